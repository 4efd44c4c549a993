"""Prepare in bounded memory: raw documents stream in batches through a scratch file; the output
does not depend on the batch size, a domain of one row group is the bytes one in-memory write
gives, and a domain of many row groups holds the same rows."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curriculab.data import prepare
from curriculab.data.prepare import run_prepare
from tests.support.near_corpus import near_corpus as _near_corpus
from tests.support.near_corpus import raw_table as _raw


@pytest.fixture(scope="module")
def raw_path(tmp_path_factory) -> Path:
    """Near-duplicate pairs, exact duplicates, short and empty documents, shuffled together."""
    texts, _, _ = _near_corpus(seed=2)
    texts = [*texts, texts[7], "tiny", "", "  " + texts[11] + "  ", *texts[:30]]
    path = tmp_path_factory.mktemp("raw") / "raw.parquet"
    pq.write_table(_raw(texts), path)
    return path


def _run(raw_path: Path, out: Path, batch_docs: int, **kwargs) -> dict:
    return run_prepare(raw_path, out, "d", 0.3, 10, batch_docs=batch_docs, **kwargs)


def test_any_batch_size_gives_the_same_bytes(raw_path: Path, tmp_path: Path) -> None:
    records = {}
    for batch_docs in (1, 7, 4096):
        out = tmp_path / f"b{batch_docs}" / "docs.parquet"
        records[batch_docs] = _run(raw_path, out, batch_docs, subset={"buckets": 3, "keep": [0, 2]})
        assert [p.name for p in out.parent.iterdir()] == ["docs.parquet"]  # no scratch left
    assert records[1] == records[7] == records[4096]
    near = records[1]["near_duplicates"]
    assert near["found"] == near["dropped"] > 5  # near pairs straddle the batches of 7
    assert records[1]["exact_duplicates"] == 32 and records[1]["short"] == 2
    first = (tmp_path / "b1" / "docs.parquet").read_bytes()
    for batch_docs in (7, 4096):
        assert (tmp_path / f"b{batch_docs}" / "docs.parquet").read_bytes() == first


def test_one_row_group_is_the_bytes_of_one_in_memory_write(raw_path, tmp_path) -> None:
    out = tmp_path / "docs.parquet"
    record = _run(raw_path, out, 5)
    table = pq.read_table(out)
    assert pq.ParquetFile(out).metadata.num_row_groups == 1
    pq.write_table(table, tmp_path / "whole.parquet")  # what prepare wrote before it streamed
    assert (tmp_path / "whole.parquet").read_bytes() == out.read_bytes()
    assert json.loads(table.schema.metadata[prepare.PREPARE_METADATA]) == record
    assert table.column_names == [
        "doc_id", "text", "split", "n_bytes", "domain", "source_index", "source",
    ]  # fmt: skip
    assert table.num_rows == record["train"] + record["test"]


def test_a_big_domain_is_written_in_row_groups(raw_path, tmp_path, monkeypatch) -> None:
    whole = _run(raw_path, tmp_path / "one.parquet", 64)
    monkeypatch.setattr(prepare, "ROW_GROUP_DOCS", 50)
    for batch_docs in (7, 64):
        out = tmp_path / f"groups{batch_docs}.parquet"
        assert _run(raw_path, out, batch_docs) == whole
        groups = pq.ParquetFile(out).metadata
        assert groups.num_row_groups == -(-(whole["train"] + whole["test"]) // 50)
        assert {groups.row_group(k).num_rows for k in range(groups.num_row_groups - 1)} == {50}
        assert pq.read_table(out).equals(pq.read_table(tmp_path / "one.parquet"))
    monkeypatch.setattr(prepare, "ROW_GROUP_BYTES", 1)  # every batch its own group
    out = tmp_path / "bytes.parquet"
    _run(raw_path, out, 64)
    groups = pq.ParquetFile(out).metadata
    sizes = [groups.row_group(k).num_rows for k in range(groups.num_row_groups)]
    assert max(sizes) <= 64 and len(sizes) >= groups.num_rows / 64 > 1
    assert pq.read_table(out).equals(pq.read_table(tmp_path / "one.parquet"))


def test_a_failed_prepare_leaves_nothing(tmp_path: Path) -> None:
    raw = tmp_path / "raw.parquet"
    pq.write_table(_raw(["too short", "x"] + ["a document long enough"] * 3), raw)
    out = tmp_path / "out" / "docs.parquet"
    with pytest.raises(prepare.PrepareError, match="domain 'd': 1 documents left"):
        run_prepare(raw, out, "d", 0.0, 12)
    assert list(out.parent.iterdir()) == []
    assert pa.types.is_string(pq.read_schema(raw).field("text").type)


def test_the_compact_index_finds_what_datasketch_lsh_finds() -> None:
    """The band keys of NearDuplicateSearch are datasketch's bands (its MinHashLSH chooses b
    and r): on a corpus of edited copies its candidates are those of a MinHashLSH holding the
    same train documents, for every test document."""
    from datasketch import MinHash, MinHashLSH

    from curriculab.data.near_duplicates import (
        _LSH_WEIGHTS,
        MINHASH_SEED,
        NearDuplicates,
        NearDuplicateSearch,
        shingles,
    )

    texts, _, _ = _near_corpus(seed=4)
    check = NearDuplicates(threshold=0.6)
    train, test = list(range(300)), list(range(300, 600))  # originals, their copies
    search = NearDuplicateSearch(check)
    for start in range(0, len(train), 37):  # in batches
        chunk = train[start : start + 37]
        search.add_train(chunk, [texts[i] for i in chunk])
    mine = search.candidates(test, [texts[i] for i in test])
    lsh = MinHashLSH(threshold=0.6, num_perm=check.num_perm, weights=_LSH_WEIGHTS)
    sets = [shingles(t, check.shingle) for t in texts]
    signatures = MinHash.bulk(sets, num_perm=check.num_perm, seed=MINHASH_SEED)
    for i in train:
        lsh.insert(i, signatures[i])
    theirs = {i: sorted(lsh.query(signatures[i])) for i in test}
    assert {i: near for i, (_, near) in mine.items()} == {i: n for i, n in theirs.items() if n}
    assert len(mine) > 50
