"""Clean raw documents and split them into train and test by content hash.

The split is a pure function of each document's text, so it never changes when documents are
added, removed or reordered, and the same text can never sit in both splits.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from curriculab.errors import CurriculabError
from curriculab.io import atomic_path, sha256_text

_SPACES = re.compile(r"[ \t\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")


class PrepareError(CurriculabError, RuntimeError):
    """The documents of a domain cannot be prepared (e.g. nothing is left after cleaning)."""


def normalise(text: str) -> str:
    """NFC, Unix newlines, single spaces inside lines, at most one blank line, stripped ends."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def split_of(doc_id: str, test_fraction: float) -> str:
    """'test' for the documents whose hash falls in the lowest `test_fraction` of the range."""
    return "test" if int(doc_id[:15], 16) / 16**15 < test_fraction else "train"


def bucket_of(doc_id: str, buckets: int) -> int:
    """A document's content-hash bucket in 0..buckets-1, from hash digits that the train/test
    split does not use, so a bucket is a random subset of both splits."""
    return int(doc_id[15:30], 16) % buckets


def prepare_documents(
    raw: pa.Table,
    domain: str,
    test_fraction: float,
    min_chars: int,
    subset: dict[str, Any] | None = None,
) -> pa.Table:
    """Normalise, drop short documents, drop exact duplicates (first kept), keep the `subset`
    buckets ({buckets, keep}; None: all), assign splits."""
    keep = set(subset["keep"]) if subset else None
    seen: set[str] = set()
    kept: list[int] = []  # rows of `raw` that survive
    texts: list[str] = []
    doc_ids: list[str] = []
    for row, text in enumerate(raw["text"].to_pylist()):
        clean = normalise(text or "")
        doc_id = sha256_text(clean)[:32]
        if len(clean) < min_chars or doc_id in seen:
            continue
        if keep is not None and bucket_of(doc_id, subset["buckets"]) not in keep:
            continue
        seen.add(doc_id)
        kept.append(row)
        texts.append(clean)
        doc_ids.append(doc_id)
    splits = [split_of(doc_id, test_fraction) for doc_id in doc_ids]
    if set(splits) != {"train", "test"}:
        raise PrepareError(
            f"domain {domain!r}: {len(texts)} documents left after cleaning and "
            f"deduplication; need documents in both splits (found {sorted(set(splits)) or 'none'})"
        )
    provenance = raw.select(["source_index", "source"]).take(pa.array(kept, pa.int64()))
    return pa.table(
        {
            "doc_id": doc_ids,
            "text": texts,
            "split": splits,
            "n_bytes": [len(text.encode()) for text in texts],
            "domain": [domain] * len(texts),
            "source_index": provenance["source_index"],
            "source": provenance["source"],
        }
    )


def run_prepare(
    raw_path: str | Path,
    out_path: str | Path,
    domain: str,
    test_fraction: float,
    min_chars: int,
    subset: dict[str, Any] | None = None,
) -> dict[str, int]:
    """Read raw Parquet, prepare it and write docs.parquet atomically; return split counts."""
    table = prepare_documents(pq.read_table(raw_path), domain, test_fraction, min_chars, subset)
    with atomic_path(out_path) as tmp:
        pq.write_table(table, tmp)
    splits = table["split"].to_pylist()
    return {"train": splits.count("train"), "test": splits.count("test")}
