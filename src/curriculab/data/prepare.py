"""Clean raw documents, split them into train and test by content hash, and drop the test
documents that nearly repeat a train document (data/near_duplicates.py).

The split is a pure function of each document's text, so it never changes when documents are
added, removed or reordered, and the same text can never sit in both splits. What was dropped
and why is stored in docs.parquet's metadata (key PREPARE_METADATA), with the download's cap.

In bounded memory: the raw documents stream in record batches; the cleaned ones go to a scratch
Parquet file beside the output while the train ones enter the near-duplicate index; the test
ones are then queried, the candidates confirmed, and docs.parquet written from the scratch file
in row groups of at most ROW_GROUP_DOCS documents or ROW_GROUP_BYTES of text. Memory holds one
batch of texts, the ids of the documents seen (exact duplicates) and the near-duplicate index
(data/near_duplicates.py), never the domain's texts; the output does not depend on the batch
size, and a domain of one row group is byte for byte what one in-memory pass wrote.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curriculab.data.near_duplicates import NearDuplicates, NearDuplicateSearch
from curriculab.errors import CurriculabError
from curriculab.io import atomic_path, sha256_text

_SPACES = re.compile(r"[ \t\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")
RAW_METADATA = b"curriculab.download"  # the cap's info in raw Parquet (data/sources.write_raw)
PREPARE_METADATA = b"curriculab.prepare"  # what prepare kept and dropped, in docs.parquet
BATCH_DOCS = 4096  # raw documents read, cleaned and signed at a time
ROW_GROUP_DOCS = 65_536  # docs.parquet's row groups hold at most this many documents
ROW_GROUP_BYTES = 128 * 2**20  # ... or this much text (bytes)


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


class _Progress:
    """Documents per second and ETA of one pass, every 10 s, on a log stream (None: silent)."""

    def __init__(self, stream: TextIO | None, what: str, total: int) -> None:
        self.stream, self.what, self.total = stream, what, total
        self.done, self.start = 0, time.monotonic()
        self.last = self.start

    def add(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if self.stream is None or (now - self.last < 10 and self.done < self.total):
            return
        self.last, elapsed = now, max(now - self.start, 1e-9)
        eta = elapsed * (self.total - self.done) / max(self.done, 1)
        print(f"prepare: {self.what} {self.done:,}/{self.total:,} documents, "
              f"{self.done / elapsed:,.0f} documents/s, ETA {eta:.0f}s",
              file=self.stream, flush=True)  # fmt: skip


def _scratch_schema(raw: pa.Schema) -> pa.Schema:
    return pa.schema(
        [("doc_id", pa.string()), ("text", pa.string()), ("split", pa.string()),
         ("n_bytes", pa.int64()), raw.field("source_index"), raw.field("source")]
    )  # fmt: skip


def _clean(
    raw_path: Path,
    scratch: Path,
    test_fraction: float,
    min_chars: int,
    subset: dict[str, Any] | None,
    search: NearDuplicateSearch,
    batch_docs: int,
    progress: TextIO | None,
) -> tuple[int, dict[str, int]]:
    """First pass: normalise the raw documents, drop short ones, exact duplicates (first kept)
    and those outside the `subset` buckets, split the rest by content hash into the scratch
    file and index the train ones for near-duplicates; return (raw documents, dropped)."""
    keep = set(subset["keep"]) if subset else None
    seen: set[str] = set()
    dropped = {"short": 0, "exact_duplicates": 0, "outside_subset": 0}
    source = pq.ParquetFile(raw_path)
    schema = _scratch_schema(source.schema_arrow)
    meter = _Progress(progress, "cleaned", source.metadata.num_rows)
    position = 0
    with pq.ParquetWriter(scratch, schema) as writer:
        for batch in source.iter_batches(
            batch_size=batch_docs, columns=[*schema.names[-2:], "text"]
        ):
            rows, texts, doc_ids = [], [], []
            for row, text in enumerate(batch.column("text").to_pylist()):
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
                    rows.append(row)
                    texts.append(clean)
                    doc_ids.append(doc_id)
            splits = [split_of(doc_id, test_fraction) for doc_id in doc_ids]
            train = [k for k, split in enumerate(splits) if split == "train"]
            search.add_train([position + k for k in train], [texts[k] for k in train])
            position += len(texts)
            taken = pa.array(rows, pa.int64())
            columns = [doc_ids, texts, splits, [len(t.encode()) for t in texts]]
            columns += [
                batch.column("source_index").take(taken),
                batch.column("source").take(taken),
            ]
            writer.write_table(pa.table(columns, schema=schema))
            meter.add(batch.num_rows)
    return source.metadata.num_rows, dropped


def _scratch_batches(
    scratch: Path, columns: list[str], batch_docs: int
) -> Iterator[tuple[int, pa.RecordBatch]]:
    """(position of the batch's first document, batch) over the scratch file, in order."""
    position = 0
    for batch in pq.ParquetFile(scratch).iter_batches(batch_size=batch_docs, columns=columns):
        yield position, batch
        position += batch.num_rows


def _near_duplicates(
    scratch: Path, search: NearDuplicateSearch, batch_docs: int, progress: TextIO | None
) -> tuple[list[int], dict[str, int]]:
    """(positions of the test documents with a near-duplicate in train, {train, test}): query
    every test document, then read the candidate train documents again to confirm them."""
    pending: dict[int, tuple[set[bytes], list[int]]] = {}
    counts = {"train": 0, "test": 0}
    meter = _Progress(progress, "queried", pq.ParquetFile(scratch).metadata.num_rows)
    for start, batch in _scratch_batches(scratch, ["text", "split"], batch_docs):
        splits = batch.column("split").to_pylist()
        tests = [k for k, split in enumerate(splits) if split == "test"]
        counts["test"] += len(tests)
        counts["train"] += len(splits) - len(tests)
        if tests:
            texts = batch.column("text").take(pa.array(tests, pa.int64())).to_pylist()
            pending.update(search.candidates([start + k for k in tests], texts))
        meter.add(batch.num_rows)
    needed = {j for _, near in pending.values() for j in near}

    def candidates() -> Iterator[tuple[int, str]]:
        for start, batch in _scratch_batches(scratch, ["text"], batch_docs) if needed else ():
            mine = [k for k in range(batch.num_rows) if start + k in needed]
            texts = batch.column("text").take(pa.array(mine, pa.int64())).to_pylist()
            yield from zip([start + k for k in mine], texts, strict=True)

    return search.confirm(pending, candidates()), counts


def _write_docs(
    scratch: Path, out: Path, drop: set[int], domain: str, record: dict[str, Any], batch_docs: int
) -> None:
    """docs.parquet: the scratch documents but `drop`, with their domain and prepare's record
    in the metadata, in row groups of at most ROW_GROUP_DOCS documents or ROW_GROUP_BYTES."""
    source = pq.ParquetFile(scratch)
    fields = list(source.schema_arrow)
    fields.insert(4, pa.field("domain", pa.string()))
    schema = pa.schema(fields, metadata={PREPARE_METADATA: json.dumps(record)})
    buffer: list[pa.Table] = []
    rows = text_bytes = 0
    with atomic_path(out) as tmp, pq.ParquetWriter(tmp, schema) as writer:

        def flush() -> None:
            if buffer:
                writer.write_table(pa.concat_tables(buffer).combine_chunks())
                buffer.clear()

        for start, batch in _scratch_batches(scratch, source.schema_arrow.names, batch_docs):
            mine = [k for k in range(batch.num_rows) if start + k not in drop]
            table = pa.Table.from_batches([batch]).take(pa.array(mine, pa.int64()))
            table = table.add_column(
                4, schema.field("domain"), pa.array([domain] * len(mine), pa.string())
            )
            offset = 0
            while offset < table.num_rows:  # fill the open row group, then start another
                piece = table.slice(offset, ROW_GROUP_DOCS - rows)
                offset += piece.num_rows
                buffer.append(piece.replace_schema_metadata(schema.metadata))
                rows += piece.num_rows
                text_bytes += pc.sum(piece["n_bytes"]).as_py() or 0
                if rows >= ROW_GROUP_DOCS or text_bytes >= ROW_GROUP_BYTES:
                    flush()
                    rows = text_bytes = 0
        flush()


def run_prepare(
    raw_path: str | Path,
    out_path: str | Path,
    domain: str,
    test_fraction: float,
    min_chars: int,
    subset: dict[str, Any] | None = None,
    near_duplicates: NearDuplicates | dict[str, Any] | None = None,
    batch_docs: int = BATCH_DOCS,
    progress: TextIO | None = None,
) -> dict[str, Any]:
    """Prepare a domain's raw Parquet into docs.parquet, atomically: normalise, drop short
    documents, exact duplicates (first kept) and those outside the `subset` buckets
    ({buckets, keep}; None: all), assign splits, and count (and by default drop) the test
    documents with a near-duplicate in train (`near_duplicates`; None: the defaults). Return
    what prepare recorded (also in the output's metadata, key PREPARE_METADATA): the download's
    cap, every count, the near-duplicate check."""
    raw_path, out_path = Path(raw_path), Path(out_path)
    check = NearDuplicates.of(near_duplicates)
    search = NearDuplicateSearch(check)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out_path.name}.", dir=out_path.parent) as work:
        scratch = Path(work) / "clean.parquet"
        raw_documents, dropped = _clean(
            raw_path, scratch, test_fraction, min_chars, subset, search, batch_docs, progress
        )
        found, counts = _near_duplicates(scratch, search, batch_docs, progress)
        drop = set(found) if check.drop else set()
        near = {**asdict(check), "test_documents": counts["test"], "found": len(found),
                "dropped": len(drop)}  # fmt: skip
        counts["test"] -= len(drop)
        if min(counts.values()) == 0:
            left = sorted(split for split, n in counts.items() if n) or "none"
            raise PrepareError(
                f"domain {domain!r}: {sum(counts.values())} documents left after cleaning and "
                f"deduplication; need documents in both splits (found {left})"
            )
        download = (pq.read_schema(raw_path).metadata or {}).get(RAW_METADATA)
        record = {
            "domain": domain,
            "download": json.loads(download) if download else None,
            "raw_documents": raw_documents,
            **dropped,
            "near_duplicates": near,
            "train": counts["train"],
            "test": counts["test"],
        }
        _write_docs(scratch, out_path, drop, domain, record, batch_docs)
    return record


def prepare_record(table: pa.Table | pa.Schema) -> dict[str, Any] | None:
    """What prepare recorded in a docs table's metadata (None: not written by prepare)."""
    schema = table if isinstance(table, pa.Schema) else table.schema
    raw = (schema.metadata or {}).get(PREPARE_METADATA)
    return json.loads(raw) if raw else None


def prepare_documents(
    raw: pa.Table,
    domain: str,
    test_fraction: float,
    min_chars: int,
    subset: dict[str, Any] | None = None,
    near_duplicates: NearDuplicates | dict[str, Any] | None = None,
    batch_docs: int = BATCH_DOCS,
) -> pa.Table:
    """`run_prepare` on a table in memory (through temporary files): the prepared table."""
    with tempfile.TemporaryDirectory() as work:
        pq.write_table(raw, Path(work) / "raw.parquet")
        run_prepare(Path(work) / "raw.parquet", Path(work) / "docs.parquet", domain,
                    test_fraction, min_chars, subset, near_duplicates, batch_docs)  # fmt: skip
        return pq.read_table(Path(work) / "docs.parquet")
