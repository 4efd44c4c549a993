"""curriculab: how the order and mix of pretraining data changes what a language model learns."""

__version__ = "0.1.0"
