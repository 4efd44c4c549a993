"""Kill a training job with SIGKILL mid-run, rerun the workflow: it resumes from the checkpoint
and ends with exactly the metrics of an uninterrupted run (CPU)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import polars as pl
import yaml

from tests.support.helpers import TINY_CONFIG
from tests.support.workflow import SNAKEMAKE

CELL = "results/training/0.3/shuffled/cosine/seed0"


def _config() -> dict:
    """The tiny study, one cell, long enough (about 800 steps) to be killed in the middle."""
    config = yaml.safe_load(yaml.safe_dump(TINY_CONFIG))
    config["grid"].update(ratios=[0.3], seeds=[0])
    config["grid"]["schedules"] = {"shuffled": {"family": "shuffled"}}
    config["streams"] = {"budget": "fixed_tokens", "tokens": 200_000, "max_epochs": 100}
    config["train"].update(checkpoint_every=40, log_every_steps=40)
    return config


def _start(workdir: Path) -> subprocess.Popen:
    (workdir / "config.yaml").write_text(yaml.safe_dump(_config()))
    command = [*SNAKEMAKE, "--directory", str(workdir), "--cores", "1", f"{CELL}/metrics.json"]
    return subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _finish(workdir: Path) -> None:
    done = _start(workdir)
    _, stderr = done.communicate(timeout=600)
    assert done.returncode == 0, stderr[-3000:]


def test_killed_training_resumes_with_identical_results(tmp_path: Path) -> None:
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    reference.mkdir()
    killed.mkdir()
    _finish(reference)

    job = _start(killed)
    checkpoint = killed / CELL / "checkpoint.pt"
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert job.poll() is None, "the run ended before its first checkpoint; make it longer"
    os.killpg(job.pid, signal.SIGKILL)  # Snakemake and the training job, as a crash would
    job.wait()
    assert not (killed / CELL / "metrics.json").exists()

    # A killed Snakemake leaves its lock behind; a user runs --unlock, then the same command.
    unlock = subprocess.run([*SNAKEMAKE, "--directory", str(killed), "--unlock"], check=False)
    assert unlock.returncode == 0
    _finish(killed)
    log = (killed / "logs" / "training" / "0.3" / "shuffled" / "cosine" / "seed0.log").read_text()
    assert "resumed from" in log
    metrics = yaml.safe_load((killed / CELL / "metrics.json").read_text())
    expected = yaml.safe_load((reference / CELL / "metrics.json").read_text())
    assert metrics["resumed_at_step"] > 0 and expected["resumed_at_step"] == 0
    assert metrics["final_curve_loss"] == expected["final_curve_loss"]
    curve = pl.read_parquet(killed / CELL / "curve.parquet")
    assert curve.equals(pl.read_parquet(reference / CELL / "curve.parquet"))
    assert not checkpoint.exists()  # removed once the run is complete
