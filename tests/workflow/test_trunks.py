"""Trunks in the real workflow: windows branch off one trunk per seed, a study trains less than
half of what its cells would cost alone, and a new window trains only its own cells."""

from __future__ import annotations

import copy
from pathlib import Path

import polars as pl
import pytest
import yaml

from curriculab.io import read_json
from tests.support.helpers import TINY_CONFIG
from tests.support.workflow import jobs_run, run

STEPS = 16  # optimiser steps per cell: 16 x 8 sequences of 32 tokens
SEEDS = [0, 1]


def _config(windows: list[float]) -> dict:
    config = copy.deepcopy(TINY_CONFIG)
    config["streams"] = {"budget": "fixed_tokens", "tokens": STEPS * 8 * 32, "max_epochs": 20}
    config["grid"] = {
        "ratios": [0.3],
        "schedules": {
            "shuffled": {"family": "shuffled", "trunk": "main"},
            "win": {
                "family": "end_window",
                "window": 0.25,
                "d1_share": 0.5,
                "trunk": "main",
                "sweep": {"window": windows},
            },
            "drop": {
                "family": "end_window",
                "window": 0.25,
                "d1_share": 0.5,
                "trunk": "main",
                "remove": "cooking",
                "sweep": {"remove": ["cooking", "history"]},
            },
        },
        "seeds": SEEDS,
        "lr_arms": {"wsd_window": {"lr_schedule": "wsd", "decay_start": "window"}},
    }
    # Windows on a trunk add D1 (upsampling): the audit judges none of them as H1, so the
    # family is left to the default (empty here) rather than named.
    config["analysis"] = {"baseline": "shuffled"}
    config["resources"] = {"train": {"cells_per_job": 3}}
    return config


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("trunks")
    (workdir / "config.yaml").write_text(yaml.safe_dump(_config([0.25, 0.5])))
    done = run(workdir, "--cores", "2")
    assert done.returncode == 0, done.stderr[-4000:]
    return workdir


def test_windows_branch_off_one_trunk_per_seed(study: Path) -> None:
    """Checkpoints where the windows start (steps 12 and 8) and where the baseline's fixed
    decay starts (step 13, the final 20%): every cell starts where it leaves the trunk."""
    checkpoints = sorted(
        p.name for p in study.glob("results/training/trunks/0.3/main/wsd_window/*/*.pt")
    )
    assert checkpoints == sorted(["step12.pt", "step13.pt", "step8.pt"] * len(SEEDS))
    starts = {"shuffled": 13, "win-window0.25": 12, "win-window0.5": 8}
    starts |= {"drop-removecooking": 12, "drop-removehistory": 12}
    # Matched controls read the trunk's order under a window's cooldown: they leave the trunk
    # where that cooldown starts, at their treatment's checkpoint.
    starts |= {f"shuffled@{name}": step for name, step in starts.items() if name != "shuffled"}
    for schedule, step in starts.items():
        for seed in SEEDS:
            metrics = read_json(
                study / f"results/training/0.3/{schedule}/wsd_window/seed{seed}/metrics.json"
            )
            assert metrics["inherited"]["step"] == step, schedule
            assert metrics["tokens_seen"] == STEPS * 8 * 32


def test_the_study_trains_at_most_half_of_its_cells_alone(study: Path) -> None:
    cells = pl.read_parquet(study / "results/analysis/cells.parquet")
    trunks = pl.read_parquet(study / "results/analysis/trunks.parquet")
    trained = cells["trained_tokens"].sum() + trunks["tokens_trained"].sum()
    alone = cells["tokens_seen"].sum()
    assert trained <= alone / 2, (trained, alone)
    report = (study / "reports/report.html").read_text()
    assert 'id="utility"' in report and "removecooking" in report


def test_a_fifth_window_trains_only_its_own_cells(study: Path) -> None:
    """A window of 37.5% starts at step 10, between the trunk's checkpoints at 8 and 12: one
    new trunk segment per seed (8 -> 10), the two new cells and their matched controls (from
    the same checkpoint); nothing that exists reruns, and the family is registered anew."""
    before = {p: p.stat().st_mtime_ns for p in study.glob("results/**/*") if p.is_file()}
    (study / "config.yaml").write_text(yaml.safe_dump(_config([0.25, 0.5, 0.375])))
    done = run(study, "--cores", "2")
    assert done.returncode == 0, done.stderr[-4000:]
    jobs = jobs_run(done.stderr)
    assert jobs["trunk"] == len(SEEDS) and jobs["stream"] == len(SEEDS), jobs
    assert jobs["matched_stream"] == len(SEEDS) and jobs["evaluate"] == 2 * len(SEEDS), jobs
    assert jobs["train"] == 2 and jobs["preregister"] == 1, jobs  # its cells and controls
    assert "trunk_stream" not in jobs and "shards" not in jobs, jobs
    for name in ("win-window0.375", "shuffled@win-window0.375"):
        new = study / f"results/training/0.3/{name}/wsd_window"
        assert sorted(p.name for p in new.iterdir()) == [f"seed{s}" for s in SEEDS]
        assert read_json(new / "seed0/metrics.json")["inherited"]["step"] == 10
    record = read_json(study / "results/training/trunks/0.3/main/wsd_window/seed0/step10.json")
    assert record["parent"] == 8 and record["tokens_trained"] == 2 * 8 * 32
    changed = sorted(
        str(p.relative_to(study)) for p, t in before.items() if p.stat().st_mtime_ns != t
    )
    registered = (
        "results/analysis/preregistration.json",
        "results/analysis/preregistration.history.jsonl",
    )
    assert all(p.startswith("results/analysis/") or p in registered for p in changed), changed
