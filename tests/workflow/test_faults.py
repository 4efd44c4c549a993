"""Faults with real processes, signals and files: a Snakemake killed in the data stage, a
corrupted shard, and two runs of the same study that must agree byte for byte.

(A training job killed with SIGKILL and resumed is tests/workflow/test_resume.py; a non-finite
loss is tests/training/test_loop.py and the bad-input table in tests/workflow/test_bad_input.py.)
"""

from __future__ import annotations

import copy
import os
import queue
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import yaml

from curriculab.data.sources import synthetic_documents
from tests.support.helpers import TINY_CONFIG
from tests.support.workflow import SNAKEMAKE

MANIFESTS = ["results/shards/cooking/manifest.json", "results/shards/history/manifest.json"]


def _snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SNAKEMAKE, "--directory", str(workdir), *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )


def _lines(stream, into: queue.Queue) -> None:
    for line in stream:
        into.put(line)
    into.put(None)


def _history_text() -> str:
    source = TINY_CONFIG["domains"]["history"]["source"]
    return "\n".join(synthetic_documents(source)) + "\n"


def _temporaries(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".tmp")]


def test_snakemake_killed_in_the_data_stage_keeps_complete_outputs(tmp_path: Path) -> None:
    """The history corpus is a named pipe, so its download job blocks, in flight, until the
    test kills Snakemake (SIGKILL, its whole process group) once the cooking documents are
    prepared. The rerun must keep those and redo only what was unfinished."""
    config = copy.deepcopy(TINY_CONFIG)
    config["domains"]["history"]["source"] = {"type": "files", "glob": "corpus/*.txt"}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "corpus").mkdir()
    pipe = tmp_path / "corpus" / "history.txt"
    os.mkfifo(pipe)

    run = subprocess.Popen(
        [*SNAKEMAKE, "--directory", str(tmp_path), "--cores", "2", *MANIFESTS],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_lines, args=(run.stderr, lines), daemon=True).start()
    seen, deadline = [], time.monotonic() + 120
    while time.monotonic() < deadline:
        line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        assert line is not None, "Snakemake ended before the kill:\n" + "".join(seen[-40:])
        seen.append(line)
        if re.search(r"Finished jobid: \d+ \(Rule: prepare\)", line):
            break
    else:
        raise AssertionError("cooking was not prepared in time:\n" + "".join(seen[-40:]))
    os.killpg(run.pid, signal.SIGKILL)  # Snakemake and its jobs, as a crash or a lost node would
    run.wait()

    done_before = {
        path: path.stat().st_mtime_ns
        for path in (tmp_path / "results").rglob("*")
        if path.is_file() and not path.name.endswith(".tmp")
    }
    rel = {str(p.relative_to(tmp_path)) for p in done_before}
    assert rel == {"results/raw/cooking.parquet", "results/data/cooking/docs.parquet"}, rel
    for path in done_before:
        assert pq.read_table(path).num_rows > 0  # every file under its final name is complete

    pipe.unlink()
    pipe.write_text(_history_text())
    assert _snakemake(tmp_path, "--unlock").returncode == 0
    rerun = _snakemake(tmp_path, "--cores", "2", *MANIFESTS)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    job = r"^(?:local)?rule (\w+):\n(?:.*\n)*?\s+wildcards: domain=(\w+)"
    ran = re.findall(job, rerun.stderr, re.M)
    assert ("download", "history") in ran and ("prepare", "history") in ran, rerun.stderr
    assert ("download", "cooking") not in ran and ("prepare", "cooking") not in ran, ran
    assert {p: p.stat().st_mtime_ns for p in done_before} == done_before  # kept, not rewritten
    for manifest in MANIFESTS:
        assert (tmp_path / manifest).exists()
    assert _temporaries(tmp_path / "results") == []


def test_a_flipped_byte_in_a_shard_stops_training_naming_the_file(tmp_path: Path) -> None:
    config = copy.deepcopy(TINY_CONFIG)
    config["grid"].update(ratios=[0.3], seeds=[0], schedules={"shuffled": {"family": "shuffled"}})
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    data = _snakemake(tmp_path, "--cores", "2", *MANIFESTS)
    assert data.returncode == 0, data.stderr[-3000:]

    shard = tmp_path / "results" / "shards" / "cooking" / "train" / "00000.arrow"
    raw = bytearray(shard.read_bytes())
    raw[len(raw) // 2] ^= 0x01  # one bit, in the token data: the file still parses
    shard.write_bytes(bytes(raw))

    cell = tmp_path / "results" / "training" / "0.3" / "shuffled" / "cosine" / "seed0"
    done = _snakemake(
        tmp_path, "--cores", "2", "results/training/0.3/shuffled/cosine/seed0/eval.json"
    )
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("curriculab: ")]
    assert len(errors) == 1, done.stderr[-3000:]
    assert "results/shards/cooking/train/00000.arrow: sha256" in errors[0]
    assert "does not match" in errors[0] and "manifest.json" in errors[0]
    assert not (cell / "metrics.json").exists() and not (cell / "model").exists()
