"""The tiny study through a real single-node SLURM with the official executor plugin.

The module fixture starts munged, slurmctld and slurmd (tests/slurm_node.py), runs the workflow
with `--workflow-profile profiles/slurm` to the report, reads SLURM's own record of every job,
then stops the daemons; the tests inspect what it collected. The study asks for one GPU per
training job (`resources.train.gpus: 1`, `train.device: auto`): the node advertises two fake GPUs,
so training jobs are scheduled with `--gpus=1` and then, finding no CUDA, train on the CPU.
In the same cluster the fixture then trains one cell of that study on two CPU processes
(`resources.train.processes: 2`, one SLURM job of two cores, torchrun and gloo inside it).

Where SLURM cannot be started (not root, packages missing), the tests fail under CI and are
skipped, with the reason, elsewhere.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
import yaml

from curriculab.config import load_study
from tests.support.helpers import REPO, SCHEMA, TINY_CONFIG
from tests.support.slurm_node import SingleNodeSlurm, is_running, missing_requirements
from tests.support.tolerances import RANK_LOSS_TOLERANCE

SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
# The profile as users run it, plus what a cluster without an accounting database needs
# (no sacct: poll squeue) and a shorter first status check, so the test does not idle.
SLURM_ARGS = [
    "--workflow-profile",
    str(REPO / "profiles" / "slurm"),
    "--slurm-status-command",
    "squeue",
    "--slurm-init-seconds-before-status-checks",
    "5",
    "--latency-wait",
    "10",
]


@dataclass
class SlurmRun:
    workdir: Path
    done: subprocess.CompletedProcess
    wall_s: float
    jobs: list[dict[str, str]]  # `scontrol show job` records of every job of the run
    daemon_pids: dict[str, int]  # the daemons the fixture started (all stopped by now)
    two_ranks: tuple[Path, subprocess.CompletedProcess, list[dict[str, str]]]  # the 2-task cell


TWO_RANK_CELL = "results/training/0.3/shuffled/cosine/seed0"


def _slurm_jobs() -> list[dict[str, str]]:
    """Every job slurmctld remembers, as {field: value} (MinJobAge keeps finished ones)."""
    done = subprocess.run(
        ["scontrol", "show", "job", "--oneliner"], capture_output=True, text=True, check=True
    )
    jobs = []
    for line in done.stdout.splitlines():
        fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
        if fields:
            jobs.append(fields)
    return jobs


@pytest.fixture(scope="module")
def slurm_run(tmp_path_factory) -> SlurmRun:
    reason = missing_requirements()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the SLURM test, but SLURM cannot start here: {reason}")
        pytest.skip(f"SLURM cannot start here: {reason}")
    workdir = tmp_path_factory.mktemp("slurm_study")
    config = copy.deepcopy(TINY_CONFIG)
    config["train"].update(device="auto", micro_batch_size=4)  # two micro-batches per step
    config["resources"] = {"train": {"gpus": 1, "cells_per_job": CELLS_PER_JOB}}
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    # One of its cells on two processes, one micro-batch each: the same cell up to rounding.
    two = tmp_path_factory.mktemp("slurm_two_ranks")
    config["train"]["device"] = "cpu"
    config["grid"].update(ratios=[0.3], seeds=[0], schedules={"shuffled": {"family": "shuffled"}})
    config["resources"] = {"train": {"cpus": 2, "processes": 2}}
    (two / "config.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    with SingleNodeSlurm() as cluster:
        started = time.monotonic()
        done = subprocess.run(
            [*SNAKEMAKE, *SLURM_ARGS], cwd=workdir, capture_output=True, text=True, env=env,
            check=False,
        )  # fmt: skip
        wall_s = time.monotonic() - started
        two_done = subprocess.run(
            [*SNAKEMAKE, *SLURM_ARGS, f"{TWO_RANK_CELL}/metrics.json"], cwd=two,
            capture_output=True, text=True, env=env, check=False,
        )  # fmt: skip
        jobs = _slurm_jobs()
        pids = dict(cluster.pids)
        if done.returncode != 0 or two_done.returncode != 0:
            print(cluster.log_tail("slurmctld"), file=sys.stderr)
    print(f"\nSLURM run of the tiny study: {wall_s:.0f} s, {len(jobs)} SLURM jobs", file=sys.stderr)
    mine = [job for job in jobs if Path(job.get("WorkDir", "")).resolve() == workdir.resolve()]
    theirs = [job for job in jobs if Path(job.get("WorkDir", "")).resolve() == two.resolve()]
    return SlurmRun(workdir, done, wall_s, mine, pids, (two, two_done, theirs))


def _cells() -> int:
    grid = TINY_CONFIG["grid"]
    return len(grid["ratios"]) * len(grid["schedules"]) * len(grid["seeds"])


CELLS_PER_JOB = 5  # 12 cells: packs of 5, 5 and 2


def _packs() -> int:
    return -(-_cells() // CELLS_PER_JOB)


def _is_pack(job: dict[str, str]) -> bool:
    return job.get("Comment", "").startswith("rule_train_p")


def test_tiny_study_runs_through_slurm_to_the_report(slurm_run: SlurmRun) -> None:
    assert slurm_run.done.returncode == 0, slurm_run.done.stderr[-4000:]
    workdir = slurm_run.workdir
    assert "<html" in (workdir / "reports" / "report.html").read_text().lower()
    cells = pl.read_parquet(workdir / "results" / "analysis" / "cells.parquet")
    assert cells.height == _cells()
    assert cells["d1_test_loss"].is_finite().all()
    for metrics in (workdir / "results" / "training").rglob("metrics.json"):
        assert json.loads(metrics.read_text())["device"] == "cpu"  # asked for a GPU, found none


def test_every_slurm_job_completed_and_short_rules_were_grouped(slurm_run: SlurmRun) -> None:
    jobs = slurm_run.jobs
    assert jobs, "slurmctld recorded no job"
    assert {job["JobState"] for job in jobs} == {"COMPLETED"}, [
        (job["JobId"], job["JobState"], job.get("Comment")) for job in jobs
    ]
    comments = sorted(job.get("Comment", "") for job in jobs)
    # One job for the data stages, one per pack of cells, one for the report; streams and
    # evaluations are local rules (no SLURM job).
    assert sum(map(_is_pack, jobs)) == _packs(), comments
    assert comments.count("rule_data_download_prepare_shards_tokenizer") == 1, comments
    assert comments.count("rule_analysis_aggregate_report") == 1, comments
    assert len(jobs) == _packs() + 2


def test_training_jobs_ask_for_a_gpu_and_cpu_jobs_do_not(slurm_run: SlurmRun) -> None:
    cell_jobs = set()
    for job in slurm_run.jobs:
        wants_gpu = _is_pack(job)
        assert (job.get("TresPerJob") == "gres:gpu:1") == wants_gpu, job
        if wants_gpu:
            cell_jobs.add(job["JobId"])
    # SLURM gave each training job one of the node's two (fake) GPUs, and the job saw it.
    placements = [
        json.loads(path.read_text())["placement"]
        for path in (slurm_run.workdir / "results" / "training").rglob("metrics.json")
    ]
    assert len(placements) == _cells()
    assert {p["slurm_job_id"] for p in placements} == cell_jobs
    assert {p["cuda_visible_devices"] for p in placements} <= {"0", "1"}


def test_requested_time_and_memory_cover_what_the_jobs_used(slurm_run: SlurmRun) -> None:
    for job in slurm_run.jobs:
        assert job["TimeLimit"] not in ("UNLIMITED", "Partition_Limit"), job
        hours, minutes, seconds = (int(x) for x in job["RunTime"].split("-")[-1].split(":"))
        limit_h, limit_m, limit_s = (int(x) for x in job["TimeLimit"].split("-")[-1].split(":"))
        assert hours * 3600 + minutes * 60 + seconds < limit_h * 3600 + limit_m * 60 + limit_s
    study = load_study(yaml.safe_load((slurm_run.workdir / "config.yaml").read_text()), SCHEMA)
    from curriculab.job_resources import pack_mem_mb

    benchmarks = list((slurm_run.workdir / "benchmarks" / "training").rglob("*.tsv"))
    assert len(benchmarks) == _packs()
    for benchmark in benchmarks:
        max_rss_mb = float(benchmark.read_text().splitlines()[1].split("\t")[2])
        assert max_rss_mb < pack_mem_mb(study, CELLS_PER_JOB), benchmark


def test_the_fixture_stopped_every_daemon_it_started(slurm_run: SlurmRun) -> None:
    assert set(slurm_run.daemon_pids) >= {"slurmctld", "slurmd"}
    assert not [name for name, pid in slurm_run.daemon_pids.items() if is_running(pid)]


def test_a_cell_on_two_processes_runs_as_one_two_core_slurm_job(slurm_run: SlurmRun) -> None:
    """resources.train.processes: 2 on SLURM: the training job is one job of two cores, its
    two ranks (torchrun, gloo) train the cell the one-process run trained, within the
    tolerance of tests/workflow/test_distributed.py."""
    two, done, jobs = slurm_run.two_ranks
    assert done.returncode == 0, done.stderr[-4000:]
    packs = [job for job in jobs if _is_pack(job)]
    assert len(packs) == 1 and {job["JobState"] for job in jobs} == {"COMPLETED"}, jobs
    assert packs[0]["NumCPUs"] == "2" and "gres:gpu" not in packs[0].get("TresPerJob", "")
    log = (two / "logs/training/0.3/shuffled/cosine/seed0.log").read_text()
    assert "data parallel: 2 ranks (gloo)" in log
    curves = [
        pl.read_parquet(root / TWO_RANK_CELL / "curve.parquet").sort("step", "domain")
        for root in (slurm_run.workdir, two)
    ]
    keys = ("step", "tokens_seen", "domain")
    assert curves[0].select(keys).equals(curves[1].select(keys))
    assert (curves[0]["loss"] - curves[1]["loss"]).abs().max() < RANK_LOSS_TOLERANCE
