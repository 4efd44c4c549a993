"""Model size presets, built as Hugging Face Llama-style causal language models.

Presets are named so that a study says "tiny" rather than a list of widths; the parameter count
is a consequence of the preset and the tokenizer's vocabulary (embeddings are tied).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importing torch/transformers is slow; config validation does not need it
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM


@dataclass(frozen=True)
class ModelPreset:
    """Shape of a decoder-only transformer."""

    hidden_size: int  # width of the residual stream
    num_layers: int  # transformer blocks
    num_heads: int  # attention heads (head size = hidden_size / num_heads)
    intermediate_size: int  # width of the SwiGLU MLP
    context: int  # longest sequence (shards.seq_len) the preset is meant for, in tokens


# Parameter counts in the names are for a 2,048-token vocabulary (124m: GPT-2's 50,257), with
# tied embeddings. The MLP is SwiGLU: three matrices of hidden x intermediate. RoPE sets no hard
# limit on length; `context` is the longest sequence a preset is sized for (124m: GPT-2's 1,024).
PRESETS: dict[str, ModelPreset] = {
    "micro": ModelPreset(
        hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, context=512
    ),
    "tiny": ModelPreset(
        hidden_size=64, num_layers=2, num_heads=4, intermediate_size=256, context=1024
    ),
    "small": ModelPreset(
        hidden_size=128, num_layers=4, num_heads=4, intermediate_size=512, context=1024
    ),
    "5m": ModelPreset(
        hidden_size=256, num_layers=6, num_heads=4, intermediate_size=704, context=2048
    ),
    "30m": ModelPreset(
        hidden_size=512, num_layers=8, num_heads=8, intermediate_size=1408, context=2048
    ),
    "124m": ModelPreset(
        hidden_size=768, num_layers=12, num_heads=12, intermediate_size=2048, context=1024
    ),
    # The proxy scales of published mixture studies (olmix, DataDecide, RegMix's 1B): with a
    # 50k vocabulary (GPT-2, NeoX) about 360M and 1.03B parameters, embeddings tied.
    "350m": ModelPreset(
        hidden_size=1024, num_layers=24, num_heads=16, intermediate_size=2816, context=2048
    ),
    "1b": ModelPreset(
        hidden_size=2048, num_layers=18, num_heads=16, intermediate_size=5632, context=2048
    ),
}


def padded_vocab_size(vocab_size: int, multiple: int = 64) -> int:
    """Round the embedding table up to a multiple of 64 (faster matmuls; unused rows are inert)."""
    return -(-vocab_size // multiple) * multiple


def model_config(preset: str, vocab_size: int, seq_len: int) -> LlamaConfig:
    """The Hugging Face config of a preset for a tokenizer of `vocab_size` and context `seq_len`."""
    from transformers import LlamaConfig

    shape = PRESETS[preset]
    return LlamaConfig(
        vocab_size=padded_vocab_size(vocab_size),
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_layers,
        num_attention_heads=shape.num_heads,
        num_key_value_heads=shape.num_heads,
        max_position_embeddings=seq_len,
        tie_word_embeddings=True,
        attn_implementation="sdpa",
    )


def build_model(preset: str, vocab_size: int, seq_len: int, seed: int) -> LlamaForCausalLM:
    """A freshly initialised model; the seed alone fixes the initial weights."""
    import torch
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    return LlamaForCausalLM(model_config(preset, vocab_size, seq_len))


def count_parameters(model: torch.nn.Module) -> int:
    """Trainable parameters, counting tied embeddings once."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def training_flops_per_token(
    n_params: int, num_layers: int, hidden_size: int, seq_len: int
) -> float:
    """Training FLOPs per token: 6 per parameter (forward + backward, tied embeddings counted
    once, as the output projection) plus attention's 12 * layers * width * context."""
    return 6.0 * n_params + 12 * num_layers * hidden_size * seq_len


def model_flops_per_token(model: torch.nn.Module, seq_len: int) -> float:
    """Training FLOPs per token of a built model (see training_flops_per_token)."""
    config = model.config
    return training_flops_per_token(
        count_parameters(model), config.num_hidden_layers, config.hidden_size, seq_len
    )


def parameter_count(preset: str, vocab_size: int) -> int:
    """Trainable parameters of a preset (tied embeddings counted once), without building it."""
    shape = PRESETS[preset]
    width = shape.hidden_size
    per_layer = 4 * width * width + 3 * width * shape.intermediate_size + 2 * width
    return padded_vocab_size(vocab_size) * width + shape.num_layers * per_layer + width


def preset_flops_per_token(preset: str, vocab_size: int, seq_len: int) -> float:
    """Training FLOPs per token of a preset, without building it (as model_flops_per_token)."""
    shape = PRESETS[preset]
    params = parameter_count(preset, vocab_size)
    return training_flops_per_token(params, shape.num_layers, shape.hidden_size, seq_len)


def load_model(model_dir: str | Path) -> LlamaForCausalLM:
    """A saved cell's model, from safetensors only and never with trust_remote_code: loading
    a model runs no code from disk (a directory holding only a pickled `pytorch_model.bin` is
    refused with an OSError, unopened)."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model_dir, use_safetensors=True)
