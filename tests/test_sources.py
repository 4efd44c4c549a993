"""Sources: every source type delivers real documents through its real code path."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curriculab.data.sources import SourceError, read_source, write_raw
from tests.helpers import make_wheel


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


def test_max_docs_caps_in_source_order() -> None:
    assert read_source(_synthetic("a", 30), 7) == read_source(_synthetic("a", 30), None)[:7]


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
        assert read_source(source, 3) == docs[:3]


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
    assert read_source(source, 2) == ["A = 1\n", "def b():\n    return 2\n"]
    with pytest.raises(SourceError, match=r"member 'tinydata/\*\.rs' matches no member"):
        read_source({**source, "member": "tinydata/*.rs"}, None)


def test_wheel_file_records_name_the_member_with_invalid_utf8(tmp_path: Path) -> None:
    digest = make_wheel(tmp_path / "index", "tinydata/bad.py", b"x = '\xff'\n")
    source = _python_files(digest, tmp_path / "index")
    with pytest.raises(SourceError, match=r"'tinydata/bad\.py': invalid UTF-8 at byte 5"):
        read_source(source, None)
