"""Target-aware selection: which pool documents to train on (README: Selection)."""
