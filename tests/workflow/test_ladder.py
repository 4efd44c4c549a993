"""The scale ladder in the real workflow: every scale's cells, the fits, the predictions and the
check at the target scale in one snakemake run; the report's ladder section; the same fits from
the same cells; nothing trained when the study is run again."""

from __future__ import annotations

import copy
import html
import json
import re
from pathlib import Path

import polars as pl
import pytest

from curriculab.analysis.domains import train_blocks
from curriculab.io import read_json
from curriculab.ladder.plan import CHECK, pool_blocks
from tests.support.helpers import TINY_CONFIG
from tests.support.report_page import visible_text
from tests.support.workflow import jobs_run, remade_same_bytes, run_study

SCALES = [2048, 4096, 8192]
TARGET = 16384
DOMAINS = ["cooking", "history"]


def _config() -> dict:
    config = copy.deepcopy(TINY_CONFIG)
    config["utility"] = {"weights": {"cooking": 1, "history": 1}}
    config["grid"]["ratios"] = [0.3]
    config["grid"]["seeds"] = [0, 1, 2]  # the check's seeds; the scales run ladder.seeds
    config["grid"]["schedules"] = {
        "shuffled": {"family": "shuffled"},
        "late": {"family": "placement", "a": 8, "b": 1},
    }
    config["ladder"] = {
        "scales": [{"tokens": t} for t in SCALES],
        "target": {"tokens": TARGET, "preset": "tiny"},  # a larger model at the target
        "seeds": [0, 1],
        "draws": 500,
    }
    config["resources"] = {"train": {"cells_per_job": 18}}
    return config


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> tuple[Path, str]:
    return run_study(tmp_path_factory, "ladder", _config())


def _run_dir(workdir: Path, schedule: str, seed: int) -> Path:
    return workdir / f"results/training/0.3/{schedule}/cosine/seed{seed}"


def test_every_scale_and_the_check_train_in_one_run(study) -> None:
    workdir, printout = study
    jobs = jobs_run(printout)
    assert jobs["ladder"] == 1 and jobs["ladder_summary"] == 1
    assert jobs["ladder_stream"] == 3 * 18 * 2 + len(CHECK) * 3
    for scale, tokens in zip(("s1", "s2", "s3"), SCALES, strict=True):
        metrics = read_json(_run_dir(workdir, f"ladder_{scale}_base", 1) / "metrics.json")
        assert metrics["tokens_seen"] == tokens and metrics["preset"] == "micro"
        perturbed = read_json(_run_dir(workdir, f"ladder_{scale}_history-x3", 0) / "metrics.json")
        assert perturbed["tokens_seen"] > tokens  # more history, the rest fixed
    check = read_json(_run_dir(workdir, "ladder_target_natural", 2) / "metrics.json")
    assert check["tokens_seen"] == TARGET and check["preset"] == "tiny"
    # Ladder cells stay out of the grid's tables (and so out of its verdicts).
    grid = pl.read_parquet(workdir / "results/analysis/cells.parquet")
    assert set(grid["schedule"]) == {"shuffled", "late"}


def test_the_tables_hold_every_scale_and_the_check_trains_the_predictions(study) -> None:
    workdir, _ = study
    optima = pl.read_csv(workdir / "results/ladder/optima.csv")
    assert optima.height == 3 * len(DOMAINS) and set(optima["method"]) <= {"delta", "bootstrap"}
    for scale, group in optima.group_by("scale"):
        assert group["weight"].sum() == pytest.approx(1.0, abs=1e-6), scale
        assert (group["ci_low"] <= group["weight"]).all() and (
            group["weight"] <= group["ci_high"]
        ).all()
    predictions = pl.read_csv(workdir / "results/ladder/predictions.csv")
    assert (
        set(predictions["rule"]) == {"all", "autoscale"} and (predictions["tokens"] == TARGET).all()
    )
    orders = pl.read_csv(workdir / "results/ladder/orders.csv")
    assert set(zip(orders["scale"], orders["parameter"], strict=True)) == {
        (s, p) for s in ("s1", "s2", "s3") for p in ("window", "factor")
    }
    fits = read_json(workdir / "results/ladder/fits.json")
    for mixture in ("predicted_all", "smallest"):
        summary = read_json(
            workdir / f"results/streams/0.3/ladder_target_{mixture}/seed0.summary.json"
        )
        used = {d: summary["domains"][d]["blocks_used"] for d in DOMAINS}
        for d in DOMAINS:  # the check's stream holds the predicted mixture (to a block)
            assert used[d] == pytest.approx(fits["check"][mixture][d] * TARGET / 32, abs=1.0)
    check = pl.read_csv(workdir / "results/ladder/check.csv")
    assert check.height == 6 and (check["seeds"] == 3).all()
    assert (check["p_holm"] >= check["p_value"] - 1e-12).all()
    assert {"inputs_outside", "floored", "beyond_levels", "law_df", "epochs", "over_cap"} <= set(
        predictions.columns
    ) and (predictions["law_df"] == 1).all()  # (3 scales - 2) x (2 domains - 1)


def test_every_cell_s_epochs_are_reported_as_its_stream_took_them(study) -> None:
    """ladder.max_epochs defaults to 1: no scale's stream repeats a block, and the table of
    epochs gives what every stream took (blocks used over the domain's pool)."""
    workdir, _ = study
    epochs = pl.read_csv(workdir / "results/ladder/epochs.csv")
    assert epochs.height == (3 * 18 + len(CHECK)) * len(DOMAINS)
    manifests = [workdir / f"results/shards/{d}/manifest.json" for d in DOMAINS]
    pool = pool_blocks(train_blocks(DOMAINS, manifests), "cooking", 0.3)
    for row in epochs.iter_rows(named=True):
        summary = read_json(
            workdir / f"results/streams/0.3/ladder_{row['scale']}_{row['run']}/seed0.summary.json"
        )
        used = summary["domains"][row["domain"]]["blocks_used"]
        assert used == pytest.approx(row["epochs"] * pool[row["domain"]], abs=3.0), row
        if row["scale"] != "target" or row["run"] in ("natural", "uniform"):
            assert row["epochs"] <= 1.0 and not row["over_cap"], row
            assert summary["domains"][row["domain"]]["repeated_blocks"] == 0, row


def test_the_report_shows_the_check_and_optimum_against_scale(study) -> None:
    workdir, _ = study
    page = (workdir / "reports/report.html").read_text()
    text = html.unescape(re.sub(r"<[^>]+>", "", visible_text(page)))
    summary = read_json(workdir / "results/ladder/summary.json")
    assert "Scale ladder: the best mix and window, one scale up" in text
    assert "The check at the target scale (16,384 tokens, tiny)" in text
    for mean in summary["check_means"]:
        assert f"{mean['objective']:.3f}" in text
    assert text.count("Predicted mixture (") == 2
    specs = json.loads(page[page.index("const CHART_SPECS = ") + 20 : page.index(";\nconst EMBED")])
    optimum = json.dumps(specs["chart-ladder-optimum"])
    assert all(f'"tokens": {t}' in optimum for t in [*SCALES, TARGET])
    assert {"chart-ladder-mixture", "chart-ladder-order"} <= set(specs)


def test_the_same_cells_give_the_same_fits_and_a_rerun_trains_nothing(
    study, tmp_path: Path
) -> None:
    workdir, _ = study
    remade_same_bytes(workdir, tmp_path / "again", "results/ladder/fits.json")
