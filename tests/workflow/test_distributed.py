"""One cell on two processes (resources.train.processes: torch.distributed, gloo, torchrun),
through the real workflow: the same curve as one process within a stated tolerance, and a run
killed mid-way resumes to exactly the curve of an uninterrupted two-process run (CPU)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import polars as pl
import pytest
import yaml

from curriculab.io import read_json
from tests.support.helpers import TINY_CONFIG
from tests.support.tolerances import RANK_LOSS_TOLERANCE
from tests.support.workflow import SNAKEMAKE

CELL = "results/training/0.3/shuffled/cosine/seed0"


def _config(processes: int) -> dict:
    """One cell of the tiny study, long enough (about 800 steps) to be killed in the middle;
    two micro-batches per step, one per rank when there are two."""
    config = yaml.safe_load(yaml.safe_dump(TINY_CONFIG))
    config["grid"].update(ratios=[0.3], seeds=[0])
    config["grid"]["schedules"] = {"shuffled": {"family": "shuffled"}}
    config["streams"] = {"budget": "fixed_tokens", "tokens": 200_000, "max_epochs": 100}
    config["train"].update(checkpoint_every=40, log_every_steps=40, micro_batch_size=4)
    config["resources"] = {"train": {"cpus": 2, "processes": processes}}
    return config


def _start(workdir: Path, processes: int) -> subprocess.Popen:
    workdir.mkdir(exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(_config(processes)))
    command = [*SNAKEMAKE, "--directory", str(workdir), "--cores", "2", f"{CELL}/metrics.json"]
    return subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip


def _finish(workdir: Path, processes: int) -> None:
    done = _start(workdir, processes)
    _, stderr = done.communicate(timeout=900)
    assert done.returncode == 0, stderr[-3000:]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("distributed")
    for name, processes in (("one", 1), ("two", 2)):
        _finish(root / name, processes)
    return {"one": root / "one", "two": root / "two", "root": root}


def _curve(workdir: Path) -> pl.DataFrame:
    return pl.read_parquet(workdir / CELL / "curve.parquet").sort("step", "domain")


def test_two_processes_train_the_single_process_cell(runs) -> None:
    one, two = _curve(runs["one"]), _curve(runs["two"])
    assert one.select("step", "tokens_seen", "domain").equals(
        two.select("step", "tokens_seen", "domain")
    )
    assert (one["loss"] - two["loss"]).abs().max() < RANK_LOSS_TOLERANCE
    final = [read_json(runs[k] / CELL / "metrics.json")["final_test"] for k in ("one", "two")]
    for domain, result in final[0].items():
        assert abs(result["loss"] - final[1][domain]["loss"]) < RANK_LOSS_TOLERANCE
    assert not list((runs["two"] / "logs/training/packs").glob(".ranks-*"))  # scratch removed


def test_a_killed_two_process_cell_resumes_to_the_same_curve(runs) -> None:
    killed = runs["root"] / "killed"
    job = _start(killed, 2)
    checkpoint = killed / CELL / "checkpoint.pt"
    deadline = time.monotonic() + 600
    while not checkpoint.exists() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert job.poll() is None, "the run ended before its first checkpoint; make it longer"
    os.killpg(job.pid, signal.SIGKILL)  # Snakemake, torchrun and both ranks, as a crash would
    job.wait()
    assert not (killed / CELL / "metrics.json").exists()
    subprocess.run([*SNAKEMAKE, "--directory", str(killed), "--unlock"], check=True)
    _finish(killed, 2)
    log = (killed / "logs/training/0.3/shuffled/cosine/seed0.log").read_text()
    assert "resumed from" in log
    assert _curve(killed).equals(_curve(runs["two"]))
