"""Clean raw documents, split them into train and test by content hash, and drop the test
documents that nearly repeat a train document (data/near_duplicates.py).

The split is a pure function of each document's text, so it never changes when documents are
added, removed or reordered, and the same text can never sit in both splits. What was dropped
and why is stored in docs.parquet's metadata (key PREPARE_METADATA), with the download's cap.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from curriculab.data.near_duplicates import NearDuplicates, near_duplicate_tests
from curriculab.errors import CurriculabError
from curriculab.io import atomic_path, sha256_text

_SPACES = re.compile(r"[ \t\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")
RAW_METADATA = b"curriculab.download"  # the cap's info in raw Parquet (data/sources.write_raw)
PREPARE_METADATA = b"curriculab.prepare"  # what prepare kept and dropped, in docs.parquet


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


def _clean(
    raw: pa.Table, min_chars: int, subset: dict[str, Any] | None
) -> tuple[list[int], list[str], list[str], dict[str, int]]:
    """(rows of `raw` kept, their texts, doc ids, {reason: documents dropped}): normalise, drop
    short documents, exact duplicates (first kept) and those outside the `subset` buckets."""
    keep = set(subset["keep"]) if subset else None
    seen: set[str] = set()
    kept: list[int] = []
    texts: list[str] = []
    doc_ids: list[str] = []
    dropped = {"short": 0, "exact_duplicates": 0, "outside_subset": 0}
    for row, text in enumerate(raw["text"].to_pylist()):
        clean = normalise(text or "")
        doc_id = sha256_text(clean)[:32]
        if len(clean) < min_chars:
            dropped["short"] += 1
        elif doc_id in seen:
            dropped["exact_duplicates"] += 1
        elif keep is not None and bucket_of(doc_id, subset["buckets"]) not in keep:
            dropped["outside_subset"] += 1
            seen.add(doc_id)  # a later copy is outside too
        else:
            seen.add(doc_id)
            kept.append(row)
            texts.append(clean)
            doc_ids.append(doc_id)
    return kept, texts, doc_ids, dropped


def _near_duplicates(
    texts: list[str], splits: list[str], check: NearDuplicates
) -> tuple[set[int], dict[str, Any]]:
    """(positions to drop, the check's record): test documents with a near-duplicate in train."""
    found = near_duplicate_tests(texts, splits, check)
    record = {
        **asdict(check),
        "test_documents": splits.count("test"),
        "found": len(found),
        "dropped": len(found) if check.drop else 0,
    }
    return (set(found) if check.drop else set()), record


def prepare_documents(
    raw: pa.Table,
    domain: str,
    test_fraction: float,
    min_chars: int,
    subset: dict[str, Any] | None = None,
    near_duplicates: NearDuplicates | dict[str, Any] | None = None,
) -> pa.Table:
    """Normalise, drop short documents, drop exact duplicates (first kept), keep the `subset`
    buckets ({buckets, keep}; None: all), assign splits, and count (and by default drop) the
    test documents with a near-duplicate in train (`near_duplicates`; None: the defaults).
    The table's metadata (PREPARE_METADATA) records every count and the download's cap."""
    kept, texts, doc_ids, dropped = _clean(raw, min_chars, subset)
    splits = [split_of(doc_id, test_fraction) for doc_id in doc_ids]
    drop, near = _near_duplicates(texts, splits, NearDuplicates.of(near_duplicates))
    keep = [i for i in range(len(texts)) if i not in drop]
    kept, texts, doc_ids, splits = (
        [column[i] for i in keep] for column in (kept, texts, doc_ids, splits)
    )
    if set(splits) != {"train", "test"}:
        raise PrepareError(
            f"domain {domain!r}: {len(texts)} documents left after cleaning and "
            f"deduplication; need documents in both splits (found {sorted(set(splits)) or 'none'})"
        )
    provenance = raw.select(["source_index", "source"]).take(pa.array(kept, pa.int64()))
    table = pa.table(
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
    download = (raw.schema.metadata or {}).get(RAW_METADATA)
    record = {
        "domain": domain,
        "download": json.loads(download) if download else None,
        "raw_documents": raw.num_rows,
        **dropped,
        "near_duplicates": near,
        "train": splits.count("train"),
        "test": splits.count("test"),
    }
    return table.replace_schema_metadata({PREPARE_METADATA: json.dumps(record)})


def prepare_record(table: pa.Table | pa.Schema) -> dict[str, Any] | None:
    """What prepare recorded in a docs table's metadata (None: not written by prepare)."""
    schema = table if isinstance(table, pa.Schema) else table.schema
    raw = (schema.metadata or {}).get(PREPARE_METADATA)
    return json.loads(raw) if raw else None


def run_prepare(
    raw_path: str | Path,
    out_path: str | Path,
    domain: str,
    test_fraction: float,
    min_chars: int,
    subset: dict[str, Any] | None = None,
    near_duplicates: NearDuplicates | dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Read raw Parquet, prepare it and write docs.parquet atomically; return what prepare
    recorded (split counts, documents dropped and why, the near-duplicate check)."""
    table = prepare_documents(
        pq.read_table(raw_path), domain, test_fraction, min_chars, subset, near_duplicates
    )
    with atomic_path(out_path) as tmp:
        pq.write_table(table, tmp)
    return prepare_record(table)
