"""Sources: every source type delivers real documents through its real code path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.stats

from curriculab.config import ConfigError, load_study
from curriculab.data.prepare import prepare_documents
from curriculab.data.sources import SourceError, read_capped, read_source, write_raw
from tests.support.helpers import SCHEMA, make_wheel, with_key


def _synthetic(topic: str, n_docs: int = 20, seed: int = 0) -> dict:
    return {"type": "synthetic", "topic": topic, "n_docs": n_docs, "seed": seed}


def test_synthetic_is_deterministic_and_topic_specific() -> None:
    first = read_source(_synthetic("cooking"), None)
    assert first == read_source(_synthetic("cooking"), None)
    assert first != read_source(_synthetic("cooking", seed=1), None)
    cooking = {w for doc in first for w in doc.lower().replace(".", "").split()}
    history = {w for doc in read_source(_synthetic("history"), None) for w in doc.lower().split()}
    assert len(cooking & history) < 0.5 * len(cooking)
    assert len(first) == 20 and all(doc.endswith(".") for doc in first)


def test_max_docs_first_caps_in_source_order() -> None:
    everything = read_source(_synthetic("a", 30), None)
    assert read_source(_synthetic("a", 30), 7, "first") == everything[:7]
    assert read_capped(_synthetic("a", 30), 7, "first").read is None  # stopped before the end
    assert read_capped(_synthetic("a", 30), 40, "first").read == 30


def _topic_sorted(tmp_path: Path, topics: int = 10, per_topic: int = 100) -> dict:
    """A text-file source listing its documents by topic, as many real dumps do: every document
    of topic t (own vocabulary) before any of topic t + 1."""
    rng = np.random.default_rng(0)
    lines = []
    for t in range(topics):
        vocab = [f"t{t}w{k}" for k in range(50)]
        lines += [f"topic{t} " + " ".join(rng.choice(vocab, size=12)) for _ in range(per_topic)]
    path = tmp_path / "sorted" / "docs.txt"
    path.parent.mkdir()
    path.write_text("\n".join(lines) + "\n")
    return {"type": "files", "glob": str(path)}


def _topics(docs: list[str]) -> list[int]:
    return [int(doc.split()[0].removeprefix("topic")) for doc in docs]


def test_max_docs_covers_every_topic_of_a_sorted_source_in_proportion(tmp_path: Path) -> None:
    """The default cap is a random subset: on a source sorted by topic it holds every topic in
    proportion (a chi-square test of uniform topic counts does not reject), where the first
    200 documents would be two topics."""
    source = _topic_sorted(tmp_path)
    everything = read_source(source, None)
    capped = read_source(source, 200)
    assert len(capped) == len(set(capped)) == 200 and set(capped) <= set(everything)
    assert capped == [doc for doc in everything if doc in set(capped)]  # source order kept
    counts = np.bincount(_topics(capped), minlength=10)
    assert counts.min() > 0, counts
    assert scipy.stats.chisquare(counts).pvalue > 0.001, counts
    assert len(set(_topics(read_source(source, 200, "first")))) == 2  # the old, biased cap


def test_random_cap_is_deterministic_nested_and_independent_of_order(tmp_path: Path) -> None:
    source = _topic_sorted(tmp_path)
    capped = read_capped(source, 150)
    assert capped == read_capped(source, 150)
    assert capped.info() == {"max_docs": 150, "sample": "random", "source_documents": 1000,
                             "kept": 150}  # fmt: skip
    everything = read_source(source, None)
    assert [everything[i] for i in capped.indices] == capped.texts  # positions in the source
    assert set(capped.texts) < set(read_source(source, 300))  # a larger cap adds documents
    shuffled = Path(source["glob"]).with_name("shuffled.txt")
    order = np.random.default_rng(1).permutation(len(everything))
    shuffled.write_text("\n".join(everything[i] for i in order) + "\n")
    assert set(read_source({"type": "files", "glob": str(shuffled)}, 150)) == set(capped.texts)


def test_random_cap_counts_distinct_documents(tmp_path: Path) -> None:
    docs = [f"document {i} of the twice listed source" for i in range(40)]
    path = tmp_path / "twice.txt"
    path.write_text("\n".join(docs + [f"  {d} " for d in docs]) + "\n")  # same after cleaning
    capped = read_source({"type": "files", "glob": str(path)}, 25)
    assert len(capped) == 25 and len({d.strip() for d in capped}) == 25
    assert len(read_source({"type": "files", "glob": str(path)}, 60)) == 40  # cap not reached


def test_random_cap_keeps_the_test_share_and_both_null_halves(tmp_path: Path) -> None:
    """The cap's hash is independent of the split's and the subset buckets': a capped corpus
    keeps its test share, and two domains capping one source then keeping hash buckets 0 and
    1 (studies/null.yaml) are disjoint halves of the same documents."""
    source = _synthetic("wiki", 1000)
    write_raw(read_capped(source, 400), source, tmp_path / "raw.parquet")
    raw = pq.read_table(tmp_path / "raw.parquet")
    whole = prepare_documents(raw, "d", 0.2, 10, near_duplicates={"drop": False})
    assert 0.13 < whole["split"].to_pylist().count("test") / whole.num_rows < 0.27
    halves = [
        prepare_documents(raw, "d", 0.2, 10, {"buckets": 2, "keep": [k]}, {"drop": False})
        for k in (0, 1)
    ]
    ids = [set(half["doc_id"].to_pylist()) for half in halves]
    assert not ids[0] & ids[1] and ids[0] | ids[1] == set(whole["doc_id"].to_pylist())
    assert all(120 < len(half) < 280 for half in ids)


def test_sample_must_be_random_or_first(tiny_config) -> None:
    study = load_study(with_key(tiny_config, "domains.cooking.sample", "first"), SCHEMA)
    assert study.domains["cooking"].sample == "first"
    assert study.domains["history"].sample == "random"  # the default
    with pytest.raises(ConfigError) as error:
        load_study(with_key(tiny_config, "domains.cooking.sample", "shuffled"), SCHEMA)
    message = str(error.value)
    assert "'domains.cooking.sample'" in message and "\n" not in message
    assert "random" in message and "first" in message


def _write_local_files(tmp_path: Path, docs: list[str]) -> dict[str, str]:
    (tmp_path / "jsonl").mkdir()
    for part in (0, 1):
        rows = docs[part::2]
        lines = "".join(json.dumps({"body": d, "n": i}) + "\n" for i, d in enumerate(rows))
        (tmp_path / "jsonl" / f"part{part}.jsonl").write_text(lines)
    (tmp_path / "pq").mkdir()
    pq.write_table(pa.table({"body": docs}), tmp_path / "pq" / "docs.parquet")
    (tmp_path / "txt").mkdir()
    (tmp_path / "txt" / "docs.txt").write_text("\n".join(docs) + "\n")
    return {kind: str(tmp_path / kind / "*") for kind in ("jsonl", "pq", "txt")}


def test_files_source_reads_jsonl_parquet_and_text(tmp_path: Path) -> None:
    docs = [f"document number {i} about soup" for i in range(6)]
    globs = _write_local_files(tmp_path, docs)
    jsonl = read_source({"type": "files", "glob": globs["jsonl"], "text_field": "body"}, None)
    assert jsonl == docs[0::2] + docs[1::2]  # files in sorted order, rows in file order
    assert read_source({"type": "files", "glob": globs["pq"], "text_field": "body"}, None) == docs
    assert read_source({"type": "files", "glob": globs["txt"]}, None) == docs


def test_files_source_errors_name_the_problem(tmp_path: Path) -> None:
    globs = _write_local_files(tmp_path, ["a doc"])
    with pytest.raises(SourceError, match="matches no file"):
        read_source({"type": "files", "glob": str(tmp_path / "none" / "*.jsonl")}, None)
    with pytest.raises(SourceError, match="text field 'missing' not found"):
        read_source({"type": "files", "glob": globs["jsonl"], "text_field": "missing"}, None)


def test_hf_source_through_load_dataset_on_local_files(tmp_path: Path) -> None:
    docs = [f"row {i}" for i in range(5)]
    globs = _write_local_files(tmp_path, docs)
    for streaming in (True, False):
        source = {
            "type": "hf",
            "path": "parquet",
            "split": "train",
            "data_files": globs["pq"],
            "text_field": "body",
            "streaming": streaming,
        }
        assert read_source(source, 3, "first") == docs[:3]
        assert len(read_source(source, 3)) == 3 and set(read_source(source, 3)) < set(docs)


def test_wheel_source_downloads_verifies_and_reads_member(tmp_path: Path) -> None:
    records = {"Soup": {"title": "Soup", "ingredients": ["water", "salt"], "steps": ["Boil."]}}
    digest = make_wheel(tmp_path / "index", "tinydata/recipes.json", json.dumps(records).encode())
    source = {
        "type": "wheel",
        "package": "tinydata",
        "version": "1.0",
        "sha256": digest,
        "member": "tinydata/recipes.json",
        "record_format": "recipe",
        "find_links": str(tmp_path / "index"),
    }
    assert read_source(source, None) == [
        "Soup\n\nIngredients:\n- water\n- salt\n\nSteps:\n1. Boil."
    ]
    with pytest.raises(SourceError, match=r"sha256 is"):
        read_source({**source, "sha256": "0" * 64}, None)
    with pytest.raises(SourceError, match=r"member 'tinydata/other\.json' not found"):
        read_source({**source, "member": "tinydata/other.json"}, None)


def test_write_raw_records_provenance(tmp_path: Path) -> None:
    source = _synthetic("x", 3)
    write_raw(read_source(source, None), source, tmp_path / "raw.parquet")
    table = pq.read_table(tmp_path / "raw.parquet")
    assert table["source_index"].to_pylist() == [0, 1, 2]
    assert set(table["source"].to_pylist()) == {"synthetic:x:seed0"}
    assert list(tmp_path.iterdir()) == [tmp_path / "raw.parquet"]  # no temporary left behind
    capped = read_capped(_synthetic("x", 30), 5)
    write_raw(capped, source, tmp_path / "capped.parquet")
    table = pq.read_table(tmp_path / "capped.parquet")
    assert table["source_index"].to_pylist() == capped.indices  # positions in the source
    assert json.loads(table.schema.metadata[b"curriculab.download"]) == capped.info()


def test_invalid_utf8_fails_naming_file_and_byte_unless_replaced(tmp_path: Path, capsys) -> None:
    path = tmp_path / "docs" / "bad.txt"
    path.parent.mkdir()
    path.write_bytes(b"first document\nsecond \xff document\n")
    source = {"type": "files", "glob": str(tmp_path / "docs" / "*.txt")}
    with pytest.raises(SourceError, match=rf"{path}: invalid UTF-8 at byte 22 \(b'\\xff'\)"):
        read_source(source, None)
    docs = read_source({**source, "encoding_errors": "replace"}, None)
    assert docs == ["first document", "second \ufffd document"]
    assert "1 invalid UTF-8 sequence(s) replaced" in capsys.readouterr().err


def _python_files(digest: str, index: Path) -> dict:
    """A wheel source reading every .py member of tinydata-1.0 in `index` as one document."""
    return {
        "type": "wheel",
        "package": "tinydata",
        "version": "1.0",
        "sha256": digest,
        "member": "tinydata/*.py",
        "record_format": "file",
        "find_links": str(index),
    }


def test_wheel_file_records_read_every_matching_member_in_name_order(tmp_path: Path) -> None:
    members = {
        "tinydata/b.py": b"def b():\n    return 2\n",
        "tinydata/sub/c.py": b"C = 3\n",
        "tinydata/readme.txt": b"not code",
    }
    digest = make_wheel(tmp_path / "index", "tinydata/a.py", b"A = 1\n", extra=members)
    source = _python_files(digest, tmp_path / "index")
    assert read_source(source, None) == ["A = 1\n", "def b():\n    return 2\n", "C = 3\n"]
    assert read_source(source, 2, "first") == ["A = 1\n", "def b():\n    return 2\n"]
    with pytest.raises(SourceError, match=r"member 'tinydata/\*\.rs' matches no member"):
        read_source({**source, "member": "tinydata/*.rs"}, None)


def test_wheel_file_records_name_the_member_with_invalid_utf8(tmp_path: Path) -> None:
    digest = make_wheel(tmp_path / "index", "tinydata/bad.py", b"x = '\xff'\n")
    source = _python_files(digest, tmp_path / "index")
    with pytest.raises(SourceError, match=r"'tinydata/bad\.py': invalid UTF-8 at byte 5"):
        read_source(source, None)
