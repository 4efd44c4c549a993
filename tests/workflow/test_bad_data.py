"""Malformed data in every kind of source, through the real `snakemake` command, table-driven.

Each case replaces D1 (cooking) of the tiny study with a bad source. A case with a rule: the
config is valid, that job fails, Snakemake exits non-zero and prints one line `curriculab: ...`
naming the file (and line or byte) or the source, the job's log holds no traceback, and nothing
is left under results/ for D1 (no output, no temporary file). A case without a rule is caught
before any job. The policy per kind is docs/reliability.md.
"""

from __future__ import annotations

import bz2
import gzip
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml
import zstandard

from tests.support.helpers import TINY_CONFIG, make_wheel, with_key
from tests.support.workflow import cooking_docs, one_line_problems, snakemake


def _source(**source: Any) -> dict[str, Any]:
    return with_key(TINY_CONFIG, "domains.cooking.source", source)


def _lines(docs: list[str] | None = None) -> list[str]:
    return [json.dumps({"text": doc}) for doc in (docs or cooking_docs())]


def _write(workdir: Path, name: str, content: bytes | str) -> str:
    """Write corpus/<name> in the workdir; return its path relative to the workdir."""
    path = workdir / "corpus" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return f"corpus/{name}"


def _files(workdir: Path, name: str, content: bytes | str, **extra: Any) -> dict[str, Any]:
    return _source(type="files", glob=_write(workdir, name, content), **extra)


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


GOOD_PARQUET = _parquet_bytes(pa.table({"text": cooking_docs()}))


def _cut_off(workdir: Path) -> dict[str, Any]:
    text = "\n".join(_lines())
    return _files(workdir, "cooking.jsonl", text[: len(text) - 20])


def _not_an_object(workdir: Path) -> dict[str, Any]:
    lines = _lines()
    lines[2] = json.dumps("just a string")
    return _files(workdir, "cooking.jsonl", "\n".join(lines) + "\n")


def _an_array_line(workdir: Path) -> dict[str, Any]:
    lines = _lines()
    lines[4] = json.dumps(["a", "list"])
    return _files(workdir, "cooking.jsonl", "\n".join(lines) + "\n")


def _wheel(workdir: Path, payload: bytes, record_format: str = "text") -> dict[str, Any]:
    digest = make_wheel(workdir / "index", "tinydata/docs.json", payload)
    return _source(
        type="wheel", package="tinydata", version="1.0", sha256=digest,
        member="tinydata/docs.json", record_format=record_format, find_links="index",
    )  # fmt: skip


def _hf_json(workdir: Path) -> dict[str, Any]:
    text = "\n".join(_lines())
    path = _write(workdir, "cooking.jsonl", text[: len(text) - 20])
    return _source(type="hf", path="json", data_files=path, split="train", streaming=False)


def _hf_parquet(workdir: Path) -> dict[str, Any]:
    path = _write(workdir, "cooking.parquet", b"PAR1 but not really")
    return _source(type="hf", path="parquet", data_files=path, split="train")


def _directory(workdir: Path) -> dict[str, Any]:
    _write(workdir, "cooking.jsonl/part-0.jsonl", "\n".join(_lines()))
    return _source(type="files", glob="corpus/*")


Build = Callable[[Path], dict[str, Any]]

# (case, build the config in the workdir, the rule that must fail (None: before any job),
#  text the one line must contain)
CASES: list[tuple[str, Build, str | None, str]] = [
    # files: JSON Lines
    ("jsonl cut off", _cut_off, "download", "line 80 is not valid JSON"),
    ("jsonl line not an object", _not_an_object, "download", "line 3 is a string, not an object"),
    ("jsonl line an array", _an_array_line, "download", "line 5 is an array, not an object"),
    ("jsonl empty", lambda w: _files(w, "cooking.jsonl", b""), "download", "every file is empty"),
    (
        "jsonl binary",
        lambda w: _files(w, "cooking.jsonl", bytes(range(256)) * 4),
        "download",
        "cooking.jsonl: invalid UTF-8 at byte 128",
    ),
    (
        "jsonl every line skipped",
        lambda w: _files(w, "cooking.jsonl", "1\n2\n[3]\n", skip_malformed=True),
        "download",
        "no record is a JSON object",
    ),
    # files: one JSON document
    (
        "json array cut off",
        lambda w: _files(w, "cooking.json", json.dumps(cooking_docs())[:-30]),
        "download",
        "not valid JSON at line 1",
    ),
    (
        "json array of strings",
        lambda w: _files(w, "cooking.json", json.dumps(cooking_docs())),
        "download",
        "record 0 of the array is a string",
    ),
    # files: Parquet
    (
        "parquet not parquet",
        lambda w: _files(w, "cooking.parquet", "\n".join(cooking_docs())),
        "download",
        "cooking.parquet: not a valid Parquet file",
    ),
    (
        "parquet truncated",
        lambda w: _files(w, "cooking.parquet", GOOD_PARQUET[: len(GOOD_PARQUET) // 2]),
        "download",
        "cooking.parquet: not a valid Parquet file",
    ),
    (
        "parquet without the text column",
        lambda w: _files(w, "cooking.parquet", _parquet_bytes(pa.table({"body": ["a", "b"]}))),
        "download",
        "text field 'text' not found; columns: ['body']",
    ),
    (
        "parquet of no rows",
        lambda w: _files(
            w, "cooking.parquet", _parquet_bytes(pa.table({"text": pa.array([], pa.string())}))
        ),
        "download",
        "every file is empty",
    ),
    # files: plain text
    ("text empty", lambda w: _files(w, "cooking.txt", b""), "download", "every file is empty"),
    ("text blank", lambda w: _files(w, "cooking.txt", "\n  \n\n"), "download", "every file is"),
    # files: compressed
    (
        "gz not gzip",
        lambda w: _files(w, "cooking.jsonl.gz", "\n".join(_lines())),
        "download",
        "cooking.jsonl.gz: not a valid .gz file",
    ),
    (
        "gz with a broken line",
        lambda w: _files(w, "cooking.jsonl.gz", gzip.compress(b'{"text": "a"}\n{"text": \n')),
        "download",
        "cooking.jsonl.gz: line 2 is not valid JSON",
    ),
    (
        "bz2 truncated",
        lambda w: _files(
            w, "cooking.txt.bz2", bz2.compress("\n".join(cooking_docs()).encode())[:60]
        ),
        "download",
        "cooking.txt.bz2: not a valid .bz2 file",
    ),
    (
        "zst not zstandard",
        lambda w: _files(w, "cooking.jsonl.zst", "\n".join(_lines())),
        "download",
        "cooking.jsonl.zst: not a valid .zst file",
    ),
    (
        "zst with a number for a record",
        lambda w: _files(
            w, "cooking.jsonl.zst", zstandard.ZstdCompressor().compress(b'7\n{"text": "a"}\n')
        ),
        "download",
        "cooking.jsonl.zst: line 1 is a number, not an object",
    ),
    (
        "parquet compressed outside",
        lambda w: _files(w, "cooking.parquet.gz", gzip.compress(GOOD_PARQUET)),
        None,
        "expected files of one kind",
    ),
    ("glob matching a directory", _directory, None, "is a directory"),
    # hf: a builder over local files, and an unreachable hub
    ("hf json cut off", _hf_json, "download", "cooking.jsonl: line 80 is not valid JSON"),
    ("hf parquet not parquet", _hf_parquet, "download", "not a valid Parquet file"),
    (
        "hf hub unreachable",
        lambda w: _source(type="hf", path="someone/recipes", split="train"),
        "download",
        "could not reach the Hugging Face hub",
    ),
    # wheel
    (
        "wheel member not JSON",
        lambda w: _wheel(w, b"title: soup\n"),
        "download",
        "'tinydata/docs.json' is not valid JSON",
    ),
    ("wheel member a number", lambda w: _wheel(w, b"42"), "download", "the JSON is a number"),
    (
        "wheel record not an object",
        lambda w: _wheel(w, json.dumps([{"title": "a"}, "b"]).encode(), "recipe"),
        "download",
        "record 1 is a string, not an object",
    ),
    # the cap and the near-duplicate check
    (
        "sample not a choice",
        lambda w: with_key(TINY_CONFIG, "domains.cooking.sample", "shuffled"),
        None,
        "'domains.cooking.sample'",
    ),
    (
        "near-duplicate threshold above 1",
        lambda w: with_key(TINY_CONFIG, "prepare.near_duplicates.threshold", 1.5),
        None,
        "'prepare.near_duplicates.threshold'",
    ),
]
# The unreachable hub: a closed local port stands in for it (deterministic, no network).
ENV = {"hf hub unreachable": {"HF_ENDPOINT": "http://127.0.0.1:9"}}


def _run_case(root: Path, case: tuple[str, Build, str | None, str]) -> list[str]:
    """Run one case; the problems found (none when it behaves as stated)."""
    name, build, rule, expected = case
    workdir = root / name.replace(" ", "_")
    workdir.mkdir()
    (workdir / "config.yaml").write_text(yaml.safe_dump(build(workdir)))
    done = snakemake(workdir, env=ENV.get(name))
    problems = one_line_problems(done, expected)
    results = workdir / "results"
    if rule is None:
        if results.exists() or "rule " in done.stdout + done.stderr:
            problems.append("a job ran")
    else:
        if f"Error in rule {rule}:" not in done.stderr:
            problems.append(f"rule {rule} did not fail")
        log = workdir / "logs" / rule / "cooking.log"
        if "Traceback" in (log.read_text() if log.exists() else "no log"):
            problems.append(f"a traceback in {log.name}")
        left = [p for p in results.rglob("*") if "cooking" in p.name or p.suffix == ".tmp"]
        if left:
            problems.append(f"left behind: {left}")
    return [f"{name}: {problem}\n{done.stderr[-800:]}" for problem in problems]


def test_every_malformed_source_fails_with_one_line(tmp_path: Path) -> None:
    assert len(CASES) >= 20
    with ThreadPoolExecutor(max_workers=3) as pool:  # each case is a separate snakemake process
        found = list(pool.map(lambda case: _run_case(tmp_path, case), CASES))
    failures = [problem for problems in found for problem in problems]
    assert not failures, "\n\n".join(failures)
