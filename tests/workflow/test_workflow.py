"""The real Snakemake workflow on the tiny study: every stage, caching, and config errors."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

from curriculab.config import load_study
from tests.helpers import REPO, SCHEMA, TINY_CONFIG

SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]


def _run(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    return subprocess.run(
        [*SNAKEMAKE, "--directory", str(workdir), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def _jobs_planned(workdir: Path) -> dict[str, int]:
    """Job counts per rule from a dry run ({} when nothing is to be done)."""
    done = _run(workdir, "--cores", "2", "--dry-run", "--quiet", "rules")
    assert done.returncode == 0, done.stderr
    return {
        m[1]: int(m[2])
        for m in re.finditer(r"^(\w+)\s+(\d+)$", done.stdout, re.M)
        if m[1] != "total"
    }


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    """Run the whole tiny study once; the tests below inspect it."""
    workdir = tmp_path_factory.mktemp("study")
    (workdir / "config.yaml").write_text(yaml.safe_dump(TINY_CONFIG))
    done = _run(workdir, "--cores", "2")
    assert done.returncode == 0, done.stderr[-4000:]
    return workdir


def test_study_runs_to_the_report(study: Path) -> None:
    report = (study / "reports" / "report.html").read_text()
    assert "<html" in report.lower() and "d1_last" in report and 'id="chart-barcodes"' in report
    cells = pl.read_parquet(study / "results" / "tables" / "cells.parquet")
    grid = TINY_CONFIG["grid"]
    assert cells.height == len(grid["ratios"]) * len(grid["schedules"]) * len(grid["seeds"])
    assert {"ratio", "schedule", "seed", "d1_test_loss", "d2_test_loss"} <= set(cells.columns)
    assert cells["d1_test_loss"].is_finite().all() and cells["d2_test_loss"].is_finite().all()
    assert (study / "results" / "tables" / "summary.csv").exists()


def test_snakemake_report_collects_the_marked_outputs(study: Path, tmp_path: Path) -> None:
    import zipfile

    archive = tmp_path / "snakemake-report.zip"
    done = _run(study, "--report", str(archive))
    assert done.returncode == 0, done.stderr[-3000:]
    names = zipfile.ZipFile(archive).namelist()
    raw = [name for name in names if "/data/raw/" in name]  # the marked outputs, by file name
    for marked in ("/report.html", "/verdicts.csv", "/summary.csv", "/paired.csv"):
        assert any(name.endswith(marked) for name in raw), (marked, names[:20])


def test_every_rule_wrote_its_log_and_benchmark(study: Path) -> None:
    for rule in ("download", "prepare", "shards", "streams", "train", "evaluate"):
        assert any((study / "logs" / rule).rglob("*.log")), rule
        assert any((study / "benchmarks" / rule).rglob("*.tsv")), rule
    train_log = next((study / "logs" / "train").rglob("*.log")).read_text()
    assert "tokens/s" in train_log and "ETA" in train_log


def test_nothing_reruns_and_a_new_seed_runs_only_its_cells(study: Path) -> None:
    assert _jobs_planned(study) == {}
    config = yaml.safe_load((study / "config.yaml").read_text())
    config["grid"]["seeds"].append(7)
    (study / "config.yaml").write_text(yaml.safe_dump(config))
    try:
        planned = _jobs_planned(study)
    finally:
        (study / "config.yaml").write_text(yaml.safe_dump(TINY_CONFIG))
    new_cells = len(config["grid"]["ratios"]) * len(config["grid"]["schedules"])
    assert planned == {
        "stream": new_cells,
        "train": new_cells,
        "evaluate": new_cells,
        "aggregate": 1,
        "report": 1,
        "all": 1,
    }


def _example_schedules_on_tiny_data() -> dict:
    """The tiny study with the schedules and budget of studies/schedules.yaml (domains renamed)."""
    example = yaml.safe_load((REPO / "studies" / "schedules.yaml").read_text())
    text = yaml.safe_dump(example["grid"]["schedules"])
    renamed = text.replace("recipes", "cooking").replace("wiki", "history")
    config = yaml.safe_load(yaml.safe_dump(TINY_CONFIG))
    config["grid"]["schedules"] = yaml.safe_load(renamed)
    config["streams"] = {**example["streams"], "tokens": 64_000}
    return config


def test_every_family_of_the_example_study_builds_streams(tmp_path: Path) -> None:
    config = _example_schedules_on_tiny_data()
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    schedules = list(load_study(config, SCHEMA).schedules)
    targets = [
        f"results/streams/{ratio:g}/{schedule}/seed{seed}.summary.json"
        for ratio in config["grid"]["ratios"]
        for schedule in schedules
        for seed in config["grid"]["seeds"]
    ]
    done = _run(tmp_path, "--cores", "2", *targets)
    assert done.returncode == 0, done.stderr[-4000:]
    for target in targets:
        summary = json.loads((tmp_path / target).read_text())
        assert summary["n_sequences"] == 64_000 // config["shards"]["seq_len"], target
        assert all(d["max_epoch"] < 4 for d in summary["domains"].values()), target
    late = json.loads(
        (tmp_path / "results/streams/0.3/placement-a16/seed0.summary.json").read_text()
    )
    assert late["domains"]["cooking"]["share_by_tenth"][-1] > 0.5


def test_bad_config_fails_before_any_job_with_one_line(tmp_path: Path) -> None:
    config = yaml.safe_load(yaml.safe_dump(TINY_CONFIG))
    config["grid"]["ratios"] = [0.1, "lots"]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    done = _run(tmp_path, "--cores", "1")
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("curriculab:")]
    assert errors == ["curriculab: config key 'grid.ratios[1]': 'lots' is not of type 'number'"]
    assert not (tmp_path / "results").exists()
    shutil.rmtree(tmp_path / ".snakemake", ignore_errors=True)


def _dry_run_resources(workdir: Path) -> dict[str, list[dict[str, str]]]:
    """{rule: [resources of each planned job]} as a dry run prints them."""
    done = _run(workdir, "--cores", "4", "--dry-run")
    assert done.returncode == 0, done.stderr[-3000:]
    planned: dict[str, list[dict[str, str]]] = {}
    for block in re.split(r"\n(?=\[.*\]\n(?:local)?rule )", done.stdout):
        rule = re.search(r"^(?:local)?rule (\w+):", block, re.M)
        resources = re.search(r"^\s+resources: (.*)$", block, re.M)
        if rule and resources:
            pairs = dict(item.split("=", 1) for item in resources[1].split(", "))
            planned.setdefault(rule[1], []).append(pairs)
    return planned


def test_jobs_declare_what_they_ask_of_the_scheduler(study: Path, tmp_path: Path) -> None:
    """Model jobs take GPUs and cores from `resources.train`; the other jobs stay on one CPU.
    Runs on the finished tiny study's shards, so the runtime is estimated from real blocks."""
    config = {**TINY_CONFIG, "train": {**TINY_CONFIG["train"], "device": "auto"}}
    config["resources"] = {"train": {"gpus": 1, "gpu_model": "a100", "cpus": 2}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    shutil.copytree(study / "results" / "shards", tmp_path / "results" / "shards")
    shutil.copytree(study / "results" / "tokenizer", tmp_path / "results" / "tokenizer")
    planned = _dry_run_resources(tmp_path)
    grid = TINY_CONFIG["grid"]
    cells = len(grid["ratios"]) * len(grid["schedules"]) * len(grid["seeds"])
    assert len(planned["train"]) == len(planned["evaluate"]) == cells
    for rule in ("train", "evaluate"):
        for job in planned[rule]:
            assert (job["gpu"], job["gpu_model"], job["cpus_per_task"]) == ("1", "a100", "2")
            assert int(job["runtime"]) >= 10 and int(job["mem_mb"]) >= 2048
    for rule in ("stream", "aggregate", "report"):
        for job in planned[rule]:
            assert "gpu" not in job and job["cpus_per_task"] == "1", (rule, job)
            assert int(job["runtime"]) > 0 and int(job["mem_mb"]) > 0


def _digests(root: Path, patterns: list[str]) -> dict[str, str]:
    from curriculab.io import sha256_file

    return {
        str(path.relative_to(root)): sha256_file(path)
        for pattern in patterns
        for path in sorted(root.glob(pattern))
    }


def test_two_runs_in_separate_directories_are_identical(study: Path, tmp_path: Path) -> None:
    """Same config, same seeds, another directory: byte-identical data, tokenizer, shards,
    streams and weights, and identical CPU metrics (all but wall-clock timings)."""
    (tmp_path / "config.yaml").write_text((study / "config.yaml").read_text())
    done = _run(tmp_path, "--cores", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    patterns = [
        "results/data/*/docs.parquet",
        "results/tokenizer/tokenizer.json",
        "results/shards/*/*",
        "results/streams/*/*/*",
        "results/runs/*/*/*/model/model.safetensors",
        "results/runs/*/*/*/eval.json",
        "results/runs/*/*/*/curve.parquet",
    ]
    first, second = _digests(study, patterns), _digests(tmp_path, patterns)
    grid = TINY_CONFIG["grid"]
    cells = len(grid["ratios"]) * len(grid["schedules"]) * len(grid["seeds"])
    assert len(first) == 1 + 2 + 3 * 2 + 2 * cells + 3 * cells
    assert first == second, sorted(k for k in first if first[k] != second.get(k))
    varying = {"train_seconds", "wall_seconds", "tokens_per_second", "step_seconds"}
    varying |= {"peak_memory_mb", "placement"}  # measured, and where the job ran
    for path in study.glob("results/runs/*/*/*/metrics.json"):
        a = json.loads(path.read_text())
        b = json.loads((tmp_path / path.relative_to(study)).read_text())
        assert {k: v for k, v in a.items() if k not in varying} == {
            k: v for k, v in b.items() if k not in varying
        }
