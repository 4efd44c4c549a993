"""The real Snakemake workflow on the tiny study: every stage, caching, and config errors."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import polars as pl
import pytest
import yaml

from curriculab.config import load_study
from curriculab.harness.run import heldout_task
from tests.support.helpers import REPO, SCHEMA, TINY_CONFIG
from tests.support.workflow import (
    jobs_planned,
    run,
)

# The tiny study under two learning-rate arms: cosine, and WSD with its decay at the D1 window;
# training in packs of 6 cells (24 cells: 4 training jobs).
CELLS_PER_JOB = 6
STUDY_CONFIG = {
    **TINY_CONFIG,
    "grid": {
        **TINY_CONFIG["grid"],
        "lr_arms": {"cosine": {}, "wsd_window": {"lr_schedule": "wsd", "decay_start": "window"}},
    },
    "resources": {"train": {"cells_per_job": CELLS_PER_JOB}},
}


def _window_arms(config: dict) -> int:
    """Arms whose cooldown starts at the schedule's window: each gets matched controls."""
    arms = (config["grid"].get("lr_arms") or {}).values()
    return sum(a.get("lr_schedule") == "wsd" and a.get("decay_start") == "window" for a in arms)


def _controls(config: dict) -> int:
    """Matched-control cells: every schedule but the baseline, ratio and seed, per window arm."""
    grid = config["grid"]
    schedules = len(grid["schedules"]) - 1
    return len(grid["ratios"]) * schedules * len(grid["seeds"]) * _window_arms(config)


def _cells(config: dict) -> int:
    grid = config["grid"]
    arms = len(grid.get("lr_arms") or [None])
    return len(grid["ratios"]) * len(grid["schedules"]) * arms * len(grid["seeds"]) + _controls(
        config
    )


def _streams(config: dict) -> int:
    """Stream files: one per (ratio, schedule, seed), matched controls' included."""
    grid = config["grid"]
    controls = (len(grid["schedules"]) - 1) * (_window_arms(config) > 0)
    return len(grid["ratios"]) * (len(grid["schedules"]) + controls) * len(grid["seeds"])


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    """Run the whole tiny study once; the tests below inspect it."""
    workdir = tmp_path_factory.mktemp("study")
    (workdir / "config.yaml").write_text(yaml.safe_dump(STUDY_CONFIG))
    done = run(workdir, "--cores", "2")
    assert done.returncode == 0, done.stderr[-4000:]
    return workdir


def test_study_runs_to_the_report(study: Path) -> None:
    report = (study / "reports" / "report.html").read_text()
    assert "<html" in report.lower() and "d1_last" in report and 'id="chart-barcodes"' in report
    cells = pl.read_parquet(study / "results" / "analysis" / "cells.parquet")
    assert cells.height == _cells(STUDY_CONFIG)
    assert {"ratio", "schedule", "arm", "seed", "d1_test_loss", "d2_test_loss"} <= set(
        cells.columns
    )
    assert cells["d1_test_loss"].is_finite().all() and cells["d2_test_loss"].is_finite().all()
    assert (cells["d1_unigram_loss"] > 0).all() and (cells["d2_unigram_loss"] > 0).all()
    for table in ("summary", "references", "exposure", "lr_profile", "verdicts"):
        assert (study / "results" / "analysis" / f"{table}.csv").exists(), table
    verdicts = pl.read_parquet(study / "results" / "analysis" / "verdicts.parquet")
    assert set(verdicts["arm"]) == {"cosine", "wsd_window"}
    assert (verdicts["correction"] == "holm").all()
    for text in ("Holm", "unigram reference", "learning-rate-weighted share", "lr wsd_window"):
        assert text in report, text
    # Without the study key `harness`, no harness job ran and no harness table exists.
    assert not (study / "results" / "harness").exists()
    assert not list((study / "results" / "analysis").glob("harness*"))


def test_the_window_arm_decays_where_d1_starts(study: Path) -> None:
    """Under wsd_window, d1_last's learning rate leaves its peak where D1 begins; under cosine
    the learning rate is the same for every schedule."""
    runs = study / "results" / "training" / "0.3"
    summary = json.loads((study / "results/streams/0.3/d1_last/seed0.summary.json").read_text())
    start = summary["window_start"]
    assert 0.5 < start < 1
    window = json.loads((runs / "d1_last" / "wsd_window" / "seed0" / "metrics.json").read_text())
    by_bin = window["lr_by_bin"]
    edge = int(start * len(by_bin))
    assert by_bin[edge - 2] == pytest.approx(1.0) and by_bin[edge + 2] < 1.0
    assert window["exposure"]["cooking"]["mean_lr_fraction"] < 1.0
    shuffled = json.loads((runs / "shuffled" / "cosine" / "seed0" / "metrics.json").read_text())
    last = json.loads((runs / "d1_last" / "cosine" / "seed0" / "metrics.json").read_text())
    assert shuffled["lr_by_bin"] == last["lr_by_bin"]


def test_snakemake_report_collects_the_marked_outputs(study: Path, tmp_path: Path) -> None:
    import zipfile

    archive = tmp_path / "snakemake-report.zip"
    done = run(study, "--report", str(archive))
    assert done.returncode == 0, done.stderr[-3000:]
    names = zipfile.ZipFile(archive).namelist()
    raw = [name for name in names if "/data/raw/" in name]  # the marked outputs, by file name
    for marked in ("/report.html", "/verdicts.csv", "/summary.csv", "/paired.csv"):
        assert any(name.endswith(marked) for name in raw), (marked, names[:20])


def test_every_rule_wrote_its_log_and_benchmark(study: Path) -> None:
    for rule in ("download", "prepare", "shards", "streams", "training", "evaluate", "analysis"):
        assert any((study / "logs" / rule).rglob("*.log")), rule
        assert any((study / "benchmarks" / rule).rglob("*.tsv")), rule
    train_log = next((study / "logs" / "training").rglob("*.log")).read_text()
    assert "tokens/s" in train_log and "ETA" in train_log


def test_the_harness_key_scores_every_cell_and_reaches_the_report(study: Path, tmp_path: Path):
    """With `harness:`, lm-evaluation-harness scores every cell's saved model on the shipped
    held-out tasks; the scores land in results/analysis/ and the report, and agree with our own
    evaluation of the same domain (the harness reads the same weights and tokenizer)."""
    workdir = tmp_path / "harness"
    shutil.copytree(study, workdir)
    grid = STUDY_CONFIG["grid"]
    config = {
        **STUDY_CONFIG,
        "grid": {
            **grid,
            "ratios": [0.3],
            "schedules": {name: grid["schedules"][name] for name in ("shuffled", "d1_last")},
            "lr_arms": {"cosine": {}},
        },
        "harness": {"tasks": [heldout_task("cooking"), heldout_task("history")]},
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    assert jobs_planned(workdir)["harness"] == 4  # 1 ratio x 2 schedules x 1 arm x 2 seeds
    done = run(workdir, "--cores", "2")
    assert done.returncode == 0, done.stderr[-4000:]
    tables = workdir / "results" / "analysis"
    scores = pl.read_parquet(tables / "harness.parquet")
    assert scores.height == 4 * 2 * 3  # cells x tasks x metrics
    assert scores["value"].is_finite().all() and (scores["n_docs"] > 0).all()
    cells = pl.read_parquet(tables / "cells.parquet")
    for domain in ("cooking", "history"):
        harness_bpb = scores.filter(
            (pl.col("task") == heldout_task(domain)) & (pl.col("metric") == "bits_per_byte")
        ).join(cells, on=["ratio", "schedule", "arm", "seed"])
        # Ours: final_eval_blocks fixed-length blocks; the harness: every test document whole.
        ratio = harness_bpb["value"] / harness_bpb[f"bits_per_byte_{domain}"]
        assert ((ratio > 0.9) & (ratio < 1.1)).all(), harness_bpb  # measured: 0.96-1.00
    summary = pl.read_parquet(tables / "harness_summary.parquet")
    assert summary.filter(pl.col("schedule") == "shuffled")["delta_mean"].is_null().all()
    assert summary.filter(pl.col("schedule") == "d1_last")["delta_mean"].is_not_null().all()
    report = (workdir / "reports" / "report.html").read_text()
    assert heldout_task("cooking") in report and 'id="harness"' in report


def _planned_with(study: Path, config: dict) -> dict[str, int]:
    """`jobs_planned` of the study under `config`; the study's own config is put back."""
    (study / "config.yaml").write_text(yaml.safe_dump(config))
    try:
        return jobs_planned(study)
    finally:
        (study / "config.yaml").write_text(yaml.safe_dump(STUDY_CONFIG))


def test_nothing_reruns_and_a_new_seed_runs_only_its_cells(study: Path) -> None:
    assert jobs_planned(study) == {}
    config = yaml.safe_load((study / "config.yaml").read_text())
    config["grid"]["seeds"].append(7)
    planned = _planned_with(study, config)
    new_streams = len(config["grid"]["ratios"]) * len(config["grid"]["schedules"])
    matched = len(config["grid"]["ratios"]) * (len(config["grid"]["schedules"]) - 1)
    new_cells = new_streams * len(config["grid"]["lr_arms"]) + matched
    assert planned == {
        "stream": new_streams,
        "matched_stream": matched,
        "train": -(-new_cells // CELLS_PER_JOB),  # new packs of the new cells only
        "cells": new_cells,
        "evaluate": new_cells,
        "preregister": 1,  # the seeds are part of the registered family
        "aggregate": 1,
        "report": 1,
        "all": 1,
    }


def test_a_new_learning_rate_arm_trains_only_its_cells(study: Path) -> None:
    """Adding an arm reuses every stream and retrains no existing cell."""
    config = yaml.safe_load((study / "config.yaml").read_text())
    config["grid"]["lr_arms"]["constant"] = {"lr_schedule": "constant"}
    planned = _planned_with(study, config)
    grid = config["grid"]
    new_cells = len(grid["ratios"]) * len(grid["schedules"]) * len(grid["seeds"])
    assert planned == {
        "train": -(-new_cells // CELLS_PER_JOB),
        "cells": new_cells,
        "evaluate": new_cells,
        "preregister": 1,
        "aggregate": 1,
        "report": 1,
        "all": 1,
    }


def test_a_new_window_arm_trains_only_its_cells_and_their_matched_controls(study: Path) -> None:
    """An arm whose cooldown follows the window brings its matched controls; they reuse the
    matched streams, and no existing cell is retrained."""
    config = yaml.safe_load((study / "config.yaml").read_text())
    config["grid"]["lr_arms"]["late_cool"] = {
        "lr_schedule": "wsd",
        "decay_start": "window",
        "min_lr_fraction": 0.3,
    }
    planned = _planned_with(study, config)
    grid = config["grid"]
    new_cells = len(grid["ratios"]) * (2 * len(grid["schedules"]) - 1) * len(grid["seeds"])
    assert planned["cells"] == new_cells and "stream" not in planned
    assert "matched_stream" not in planned


def test_matched_controls_train_under_the_treatments_learning_rate(study: Path) -> None:
    """Every judged comparison under wsd_window compares cells whose lr/peak agree at every
    optimiser step (the runs' own LR records, recomputed step by step) and whose streams differ;
    the matched control reads the baseline's very stream; the unmatched comparison is audited
    as a different learning-rate curve and gets no verdict."""
    from curriculab.training.lr import record_curve

    tables = study / "results" / "analysis"
    verdicts = pl.read_parquet(tables / "verdicts.parquet")
    window = verdicts.filter(pl.col("arm") == "wsd_window")
    assert window.height and (window["control"] == "shuffled@d1_last").all()
    assert window["judged"].all() and (window["differs_in"] == "order only").all()
    runs = study / "results" / "training"
    for ratio, seed in (("0.1", 0), ("0.3", 1)):
        cell = json.loads(
            (runs / ratio / "d1_last/wsd_window" / f"seed{seed}/metrics.json").read_text()
        )
        control = json.loads(
            (runs / ratio / "shuffled@d1_last/wsd_window" / f"seed{seed}/metrics.json").read_text()
        )
        base = json.loads(
            (runs / ratio / "shuffled/wsd_window" / f"seed{seed}/metrics.json").read_text()
        )
        a, b = record_curve(cell["lr_curve"]), record_curve(control["lr_curve"])
        assert len(a) == cell["steps"] and (a == b).all()
        assert cell["lr_curve"]["sha256"] == control["lr_curve"]["sha256"]
        assert not (record_curve(base["lr_curve"]) == a).all()  # the baseline decays elsewhere
        assert control["stream_sha256"] == base["stream_sha256"] != cell["stream_sha256"]
    # `late` has no window: its control's curve is the baseline's, and so are its results
    # (it branches off the same snapshot as the baseline's own cell, one after the other).
    for seed in (0, 1):
        same = [
            json.loads(
                (runs / "0.3" / name / "wsd_window" / f"seed{seed}/metrics.json").read_text()
            )
            for name in ("shuffled", "shuffled@late")
        ]
        assert same[0]["final_test"] == same[1]["final_test"]
    comparisons = pl.read_parquet(tables / "comparisons.parquet")
    unmatched = comparisons.filter(
        (pl.col("schedule") == "d1_last") & (pl.col("control") == "shuffled")
        & (pl.col("arm") == "wsd_window")
    )  # fmt: skip
    assert unmatched.height and not unmatched["order_only"].any()
    assert unmatched["differs_in"].str.contains("LR schedule").all()
    cosine = comparisons.filter(pl.col("arm") == "cosine")
    assert cosine["order_only"].all()
    registration = json.loads((study / "results" / "analysis" / "preregistration.json").read_text())
    report = (study / "reports" / "report.html").read_text()
    assert registration["sha256"][:12] in report and "differs in" in report


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
    done = run(tmp_path, "--cores", "2", *targets)
    assert done.returncode == 0, done.stderr[-4000:]
    for target in targets:
        summary = json.loads((tmp_path / target).read_text())
        assert summary["n_sequences"] == 64_000 // config["shards"]["seq_len"], target
        assert all(d["max_epoch"] < 4 for d in summary["domains"].values()), target
    late = json.loads(
        (tmp_path / "results/streams/0.3/placement-a16/seed0.summary.json").read_text()
    )
    assert late["domains"]["cooking"]["share_by_tenth"][-1] > 0.5


def _dry_run_resources(workdir: Path) -> dict[str, list[dict[str, str]]]:
    """{rule: [resources of each planned job]} as a dry run prints them."""
    done = run(workdir, "--cores", "4", "--dry-run")
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
    packs = [job for rule, jobs in planned.items() if rule.startswith("train_p") for job in jobs]
    assert len(planned["evaluate"]) == _cells(config)
    assert len(packs) == -(-_cells(config) // 8)  # the default: 8 cells per training job
    for job in packs:
        assert (job["gpu"], job["gpu_model"], job["cpus_per_task"]) == ("1", "a100", "2")
        assert int(job["runtime"]) >= 10 and int(job["mem_mb"]) >= 2048
    for rule in ("stream", "evaluate", "aggregate", "report"):
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
    done = run(tmp_path, "--cores", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    patterns = [
        "results/data/*/docs.parquet",
        "results/tokenizer/tokenizer.json",
        "results/shards/*/*.json",
        "results/shards/*/*/*.arrow",  # a split is a folder of files
        "results/streams/*/*/*",
        "results/training/*/*/*/*/model/model.safetensors",
        "results/training/*/*/*/*/eval.json",
        "results/training/*/*/*/*/curve.parquet",
    ]
    first, second = _digests(study, patterns), _digests(tmp_path, patterns)
    cells = _cells(STUDY_CONFIG)
    streams = _streams(STUDY_CONFIG)
    assert len(first) == 1 + 2 + 3 * 2 + 2 * streams + 3 * cells
    assert first == second, sorted(k for k in first if first[k] != second.get(k))
    varying = {"train_seconds", "wall_seconds", "tokens_per_second", "step_seconds"}
    varying |= {"peak_memory_mb", "placement"}  # measured, and where the job ran
    for path in study.glob("results/training/*/*/*/*/metrics.json"):
        a = json.loads(path.read_text())
        b = json.loads((tmp_path / path.relative_to(study)).read_text())
        for metrics in (a, b):  # a branched cell's inherited prefix seconds are measured too
            (metrics.get("inherited") or {}).pop("train_seconds", None)
        assert {k: v for k, v in a.items() if k not in varying} == {
            k: v for k, v in b.items() if k not in varying
        }
