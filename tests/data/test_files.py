"""The policy for bad local files (data/files.py), in-process: which records are kept, which
line is named, and which files are left out."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curriculab.data.files import SourceError, json_records, kind_of, read_bytes
from curriculab.data.sources import read_source

# A JSON Lines line: an object with a text (kept), or something that is not one (malformed).
GOOD = st.builds(
    lambda t, ascii: json.dumps({"text": t}, ensure_ascii=ascii),
    st.text(min_size=1, max_size=20),  # U+2028 and friends too: only \n ends a line
    st.booleans(),
)
BAD = st.one_of(
    st.integers().map(json.dumps),
    st.lists(st.integers(), max_size=3).map(json.dumps),
    st.text(min_size=1, max_size=5).map(json.dumps),
    st.sampled_from(['{"text": ', "{", "nul", '{"a": 1']),  # cut off / not JSON
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), GOOD, BAD), min_size=1, max_size=30))
def test_json_lines_keep_exactly_the_objects(rows):
    lines = [good if keep else bad for keep, good, bad in rows]
    kept, skipped = json_records(Path("x.jsonl"), "\n".join(lines), skip_malformed=True)
    assert kept == [line for (keep, _, _), line in zip(rows, lines, strict=True) if keep]
    assert skipped == sum(not keep for keep, _, _ in rows)
    first_bad = next((i for i, (keep, _, _) in enumerate(rows, start=1) if not keep), None)
    if first_bad is None:
        assert json_records(Path("x.jsonl"), "\n".join(lines), skip_malformed=False)[1] == 0
    else:
        with pytest.raises(SourceError, match=rf"^x\.jsonl: line {first_bad} is "):
            json_records(Path("x.jsonl"), "\n".join(lines), skip_malformed=False)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("a.jsonl", ("json", None)),
        ("a.JSON.GZ", ("json", ".gz")),
        ("a.txt.zst", ("text", ".zst")),
        ("a.b.parquet", ("parquet", None)),
        ("a.parquet.gz", (None, ".gz")),  # Parquet compresses inside; datasets cannot unwrap it
        ("a.csv", (None, None)),
        ("a.gz", (None, ".gz")),
    ],
)
def test_kind_by_name(name, kind):
    assert kind_of(name) == kind


def test_skipped_records_and_empty_files_are_counted_in_the_log(tmp_path, capsys):
    lines = [json.dumps({"text": f"doc {i}"}) for i in range(6)]
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress("\n".join([*lines[:3], "[1]"]).encode()))
    (tmp_path / "b.jsonl").write_text('{"text": "doc 3"}\n7\n' + "\n".join(lines[4:]) + '\n{"te')
    (tmp_path / "c.jsonl").write_text("\n \n")
    source = {"type": "files", "glob": str(tmp_path / "*.jsonl*"), "skip_malformed": True}
    assert read_source(source, None) == [f"doc {i}" for i in range(6)]
    log = capsys.readouterr().err
    assert "a.jsonl.gz: skipped 1 malformed record(s)" in log
    assert "b.jsonl: skipped 2 malformed record(s)" in log
    assert "c.jsonl: the file is empty; left out" in log
    with pytest.raises(SourceError, match=r"a\.jsonl\.gz: line 4 is an array, not an object"):
        read_source({**source, "skip_malformed": False}, None)


def test_a_file_that_cannot_be_read_is_named(tmp_path):
    """Root reads any file, so the unreadable file here is one that vanished after the glob
    matched it (or a directory where a file was expected)."""
    with pytest.raises(SourceError, match=r"gone\.jsonl: cannot be read \(FileNotFoundError"):
        read_bytes(tmp_path / "gone.jsonl")
    (tmp_path / "dir.jsonl").mkdir()
    with pytest.raises(SourceError, match=r"dir\.jsonl: cannot be read \(IsADirectoryError"):
        read_bytes(tmp_path / "dir.jsonl")
