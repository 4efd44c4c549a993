"""Target-aware selection: which pool documents to train on (docs/stages/selection.md)."""
