"""Prepare: cleaning, exact deduplication, a hash-based split and near-duplicates across it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curriculab.config import ConfigError, load_study
from curriculab.data.prepare import PrepareError, normalise, prepare_documents, run_prepare
from curriculab.data.sources import read_capped, write_raw
from tests.support.helpers import SCHEMA, with_key
from tests.support.near_corpus import near_corpus as _near_corpus
from tests.support.near_corpus import random_words as _words
from tests.support.near_corpus import raw_table as _raw


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


def _by_text(table: pa.Table) -> dict[str, str]:
    return dict(zip(table["text"].to_pylist(), table["split"].to_pylist(), strict=True))


def test_near_duplicates_of_train_are_found_and_dropped_from_test() -> None:
    """Known truth: an edited copy and its original are near-duplicates, so whichever of the
    two fell in test while the other fell in train must go; far copies and unrelated documents
    stay. The train split is never touched."""
    texts, near, far = _near_corpus()
    every = prepare_documents(_raw(texts), "d", 0.3, 10, near_duplicates={"drop": False})
    split = _by_text(every)
    expected = set()  # the test half of every near pair whose other half is in train
    for copy, original in near.items():
        for a, b in ((copy, original), (original, copy)):
            if (split[a], split[b]) == ("test", "train"):
                expected.add(a)
    assert len(expected) > 40  # the corpus exercises the check
    table = prepare_documents(_raw(texts), "d", 0.3, 10)  # the default drops them
    kept = _by_text(table)
    assert {t for t, s in split.items() if s == "test"} - set(kept) == expected
    assert {t for t, s in split.items() if s == "train"} <= set(kept)
    assert all(text in kept for text in far)
    record = json.loads(table.schema.metadata[b"curriculab.prepare"])
    assert record["near_duplicates"]["found"] == record["near_duplicates"]["dropped"]
    assert record["near_duplicates"]["found"] == len(expected)
    assert record["test"] == list(split.values()).count("test") - len(expected)
    counted = json.loads(every.schema.metadata[b"curriculab.prepare"])["near_duplicates"]
    assert (counted["found"], counted["dropped"]) == (len(expected), 0)  # drop: false counts


def test_unrelated_documents_have_no_near_duplicates() -> None:
    texts = [" ".join(_words(np.random.default_rng(i), 60)) for i in range(400)]
    table = prepare_documents(_raw(texts), "d", 0.3, 10)
    assert table.num_rows == 400
    assert json.loads(table.schema.metadata[b"curriculab.prepare"])["near_duplicates"]["found"] == 0


def test_near_duplicate_check_is_deterministic_and_independent_of_order() -> None:
    texts, _, _ = _near_corpus(seed=1)
    first = prepare_documents(_raw(texts), "d", 0.3, 10)
    again = prepare_documents(_raw(texts), "d", 0.3, 10)
    backward = prepare_documents(_raw(texts[::-1]), "d", 0.3, 10)
    assert first.equals(again)
    assert set(first["doc_id"].to_pylist()) == set(backward["doc_id"].to_pylist())


def test_near_duplicate_threshold_decides() -> None:
    """The far copies (Jaccard about 0.5) match at threshold 0.4 but not at 0.8."""
    texts, _, far = _near_corpus()
    strict = _by_text(prepare_documents(_raw(texts), "d", 0.3, 10))
    loose = _by_text(prepare_documents(_raw(texts), "d", 0.3, 10, None, {"threshold": 0.4}))
    assert far <= set(strict)
    assert not far <= set(loose) and set(loose) < set(strict)


def test_near_duplicate_settings_are_checked(tiny_config) -> None:
    for key, value in [("threshold", 1.5), ("shingle", 0), ("drop", "yes"), ("extra", 1)]:
        with pytest.raises(ConfigError) as error:
            load_study(with_key(tiny_config, f"prepare.near_duplicates.{key}", value), SCHEMA)
        assert "'prepare.near_duplicates" in str(error.value) and "\n" not in str(error.value)
    study = load_study(with_key(tiny_config, "prepare.near_duplicates.drop", False), SCHEMA)
    assert study.near_duplicates.drop is False and study.near_duplicates.threshold == 0.8


def test_run_prepare_records_the_cap_and_every_count(tmp_path: Path) -> None:
    source = {"type": "synthetic", "topic": "x", "n_docs": 120}
    write_raw(read_capped(source, 100), source, tmp_path / "raw.parquet")
    record = run_prepare(tmp_path / "raw.parquet", tmp_path / "docs.parquet", "d", 0.2, 5)
    assert record["download"] == {
        "max_docs": 100, "sample": "random", "source_documents": 120, "kept": 100,
    }  # fmt: skip
    assert record["raw_documents"] == 100 and record["train"] + record["test"] == 100
    assert pq.read_table(tmp_path / "docs.parquet").num_rows == 100
