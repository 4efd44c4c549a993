"""The study's tokenizer: one byte-level BPE trained on the train split of every domain, or an
existing one (`tokenizer.pretrained`, data/pretrained.py).

Byte-level BPE covers any UTF-8 input without an unknown token, so test documents never fall
outside the vocabulary. One tokenizer serves all domains, so losses are comparable across them.
Either way the stage writes tokenizer.json and, beside it, tokenizer_info.json naming the token
that separates packed documents; `load_tokenizer` reads both.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pyarrow.parquet as pq
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from curriculab.data.pretrained import end_of_document_token, write_info
from curriculab.io import atomic_path

END_OF_DOCUMENT = "<|endoftext|>"


def _train_texts(docs_paths: Sequence[str | Path], batch_docs: int = 1024) -> Iterator[str]:
    """Every domain's train documents, streamed in record batches (bounded memory), in a fixed
    order: identical merges every run."""
    for path in sorted(str(p) for p in docs_paths):
        batches = pq.ParquetFile(path).iter_batches(
            batch_size=batch_docs, columns=["text", "split"]
        )
        for batch in batches:
            texts, splits = batch.column("text").to_pylist(), batch.column("split").to_pylist()
            yield from (text for text, split in zip(texts, splits, strict=True) if split == "train")


def train_tokenizer(docs_paths: Sequence[str | Path], vocab_size: int) -> Tokenizer:
    """Train a byte-level BPE of `vocab_size` entries (including the end-of-document token)."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[END_OF_DOCUMENT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_train_texts(docs_paths), trainer=trainer)
    return tokenizer


def run_tokenizer(docs_paths: Sequence[str | Path], vocab_size: int, out_path: str | Path) -> int:
    """Train and save `tokenizer.json` atomically; return the actual vocabulary size."""
    tokenizer = train_tokenizer(docs_paths, vocab_size)
    with atomic_path(out_path) as tmp:
        tokenizer.save(str(tmp))
    origin = {"trained": "byte-level BPE", "vocab_size_asked": vocab_size}
    write_info(out_path, tokenizer, END_OF_DOCUMENT, origin)
    return tokenizer.get_vocab_size()


def end_of_document_id(tokenizer: Tokenizer, token: str = END_OF_DOCUMENT) -> int:
    """The id of the token that separates packed documents."""
    token_id = tokenizer.token_to_id(token)
    if token_id is None:
        raise ValueError(f"tokenizer has no {token} token")
    return token_id


def load_tokenizer(path: str | Path) -> tuple[Tokenizer, int]:
    """The study's tokenizer and the id of its end-of-document token (from the info file
    beside it)."""
    tokenizer = Tokenizer.from_file(str(path))
    return tokenizer, end_of_document_id(tokenizer, end_of_document_token(path, END_OF_DOCUMENT))
