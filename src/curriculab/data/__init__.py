"""Data stages: sources -> prepared documents -> tokenizer -> token shards."""
