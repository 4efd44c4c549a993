"""Prepare: cleaning, exact deduplication and a hash-based split."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curriculab.data.prepare import PrepareError, normalise, prepare_documents, run_prepare


def _raw(texts: list[str]) -> pa.Table:
    return pa.table(
        {"source_index": list(range(len(texts))), "text": texts, "source": ["test"] * len(texts)}
    )


def test_normalise_whitespace() -> None:
    assert normalise("  a \t b\r\n\r\n\r\n\nc  \n") == "a b\n\nc"
    assert normalise("e\u0301") == "\u00e9"  # NFC


def test_dedupe_drop_short_and_keep_first() -> None:
    texts = [f"document {i} with enough text" for i in range(40)]
    table = prepare_documents(
        _raw([*texts, texts[3], "  " + texts[5] + " ", "tiny", ""]),
        "d",
        test_fraction=0.3,
        min_chars=10,
    )
    assert table["text"].to_pylist() == texts
    assert table["source_index"].to_pylist() == list(range(40))
    assert len(set(table["doc_id"].to_pylist())) == 40


def test_split_is_a_function_of_content_not_position() -> None:
    texts = [f"a distinct document number {i}" for i in range(200)]
    forward = prepare_documents(_raw(texts), "d", 0.25, 5)
    backward = prepare_documents(_raw(texts[::-1]), "d", 0.25, 5)
    split_of = dict(zip(forward["text"].to_pylist(), forward["split"].to_pylist(), strict=True))
    assert split_of == dict(
        zip(backward["text"].to_pylist(), backward["split"].to_pylist(), strict=True)
    )
    share = list(split_of.values()).count("test") / len(split_of)
    assert 0.15 < share < 0.35


def test_nothing_left_is_a_clear_error() -> None:
    with pytest.raises(PrepareError, match="domain 'd': 0 documents left"):
        prepare_documents(_raw(["", "  ", "x"]), "d", 0.2, 5)


def test_run_prepare_writes_parquet(tmp_path: Path) -> None:
    pq.write_table(_raw([f"text number {i}" for i in range(50)]), tmp_path / "raw.parquet")
    counts = run_prepare(tmp_path / "raw.parquet", tmp_path / "out" / "docs.parquet", "d", 0.2, 5)
    docs = pq.read_table(tmp_path / "out" / "docs.parquet")
    assert counts["train"] + counts["test"] == docs.num_rows == 50
    assert {"doc_id", "text", "split", "n_bytes", "domain", "source"} <= set(docs.column_names)


def test_subset_buckets_are_disjoint_random_halves_of_both_splits() -> None:
    texts = [f"a distinct document number {i}" for i in range(400)]
    halves = [
        prepare_documents(_raw(texts), "d", 0.25, 5, {"buckets": 2, "keep": [k]}) for k in (0, 1)
    ]
    ids = [set(half["doc_id"].to_pylist()) for half in halves]
    assert not ids[0] & ids[1] and len(ids[0] | ids[1]) == 400
    for half in halves:
        assert 150 < half.num_rows < 250  # about half, by hash
        assert {"train", "test"} == set(half["split"].to_pylist())
    # a document's bucket is a function of its content: the same text, the same half
    again = prepare_documents(_raw(texts[::-1]), "d", 0.25, 5, {"buckets": 2, "keep": [0]})
    assert set(again["doc_id"].to_pylist()) == ids[0]
