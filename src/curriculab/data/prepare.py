"""Clean raw documents and split them into train and test by content hash.

The split is a pure function of each document's text, so it never changes when documents are
added, removed or reordered, and the same text can never sit in both splits.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from curriculab.io import atomic_path, sha256_text

_SPACES = re.compile(r"[ \t\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")


class PrepareError(RuntimeError):
    """The documents of a domain cannot be prepared (e.g. nothing is left after cleaning)."""


def normalise(text: str) -> str:
    """NFC, Unix newlines, single spaces inside lines, at most one blank line, stripped ends."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def split_of(doc_id: str, test_fraction: float) -> str:
    """'test' for the documents whose hash falls in the lowest `test_fraction` of the range."""
    return "test" if int(doc_id[:15], 16) / 16**15 < test_fraction else "train"


def prepare_documents(raw: pa.Table, domain: str, test_fraction: float, min_chars: int) -> pa.Table:
    """Normalise, drop short documents, drop exact duplicates (first kept), assign splits."""
    seen: set[str] = set()
    rows: dict[str, list] = {k: [] for k in ("doc_id", "text", "split", "n_bytes", "source_index")}
    for index, text in zip(raw["source_index"].to_pylist(), raw["text"].to_pylist(), strict=True):
        clean = normalise(text or "")
        if len(clean) < min_chars:
            continue
        doc_id = sha256_text(clean)[:32]
        if doc_id in seen:
            continue
        seen.add(doc_id)
        for key, value in zip(
            rows,
            (doc_id, clean, split_of(doc_id, test_fraction), len(clean.encode()), index),
            strict=True,
        ):
            rows[key].append(value)
    splits = set(rows["split"])
    if splits != {"train", "test"}:
        raise PrepareError(
            f"domain {domain!r}: {len(rows['text'])} documents left after cleaning and "
            f"deduplication; need documents in both splits (found {sorted(splits) or 'none'})"
        )
    table = pa.table(rows)
    return table.append_column(
        "domain", pa.array([domain] * len(table), pa.string())
    ).append_column("source", raw["source"].take(pa.array(rows["source_index"])))


def run_prepare(
    raw_path: str | Path, out_path: str | Path, domain: str, test_fraction: float, min_chars: int
) -> dict[str, int]:
    """Read raw Parquet, prepare it and write docs.parquet atomically; return split counts."""
    table = prepare_documents(pq.read_table(raw_path), domain, test_fraction, min_chars)
    with atomic_path(out_path) as tmp:
        pq.write_table(table, tmp)
    splits = table["split"].to_pylist()
    return {"train": splits.count("train"), "test": splits.count("test")}
