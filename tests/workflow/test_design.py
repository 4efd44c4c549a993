"""The design loop in the real workflow: rounds of proposals trained as cells in one snakemake
run, the recommendation and the baseline also trained on fresh seeds, the report's design
section, the same proposals from the same inputs, and nothing new trained when the study is run
again."""

from __future__ import annotations

import copy
import html
import json
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from curriculab.design.surrogate import Box
from curriculab.io import read_json
from tests.support.helpers import TINY_CONFIG
from tests.support.report_page import visible_text
from tests.support.workflow import jobs_run, remade_same_bytes, run_study

SEEDS = [0, 1]
FRESH = [2, 3]  # design.fresh_seeds' default: as many as grid.seeds, after the largest
BOUNDS = {"window": [0.05, 0.5], "d1_share": [0.0, 1.0]}
INITIAL, ROUNDS, PER_ROUND = 3, 1, 2  # rounds 0, 1 and the recommendation (round 2): 6 points


def _config() -> dict:
    config = copy.deepcopy(TINY_CONFIG)
    config["grid"]["ratios"] = [0.3]
    config["grid"]["seeds"] = SEEDS
    config["grid"]["schedules"] = {
        "shuffled": {"family": "shuffled"},
        "win": {"family": "end_window", "window": 0.2, "d1_share": 0.3},
    }
    config["design"] = {
        "schedule": "win",
        "parameters": BOUNDS,
        "initial": INITIAL,
        "rounds": ROUNDS,
        "per_round": PER_ROUND,
    }
    config["resources"] = {"train": {"cells_per_job": 6}}
    return config


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> tuple[Path, str]:
    return run_study(tmp_path_factory, "design", _config())


def _rounds(workdir: Path) -> list[dict]:
    return [
        read_json(workdir / f"results/design/round{r}/proposals.json") for r in range(ROUNDS + 2)
    ]


def test_every_round_is_trained_in_one_run_and_reads_the_rounds_before_it(study) -> None:
    workdir, printout = study
    jobs = jobs_run(printout)
    assert jobs["design"] == ROUNDS + 2 and jobs["design_summary"] == 1
    rounds = _rounds(workdir)
    assert [len(r["proposals"]) for r in rounds] == [INITIAL, PER_ROUND, 1]
    seen = {"win"}  # the grid's own point in the box
    for r in rounds[1:]:
        assert {o["schedule"] for o in r["observed"]} == seen | {
            p["schedule"] for q in rounds[: r["round"]] for p in q["proposals"]
        }
        seen |= {p["schedule"] for q in rounds[: r["round"]] for p in q["proposals"]}
        assert all(p["predicted"]["sd"] > 0 for p in r["proposals"])
    cells = pl.read_parquet(workdir / "results/design/points.parquet")
    assert cells.height == 1 + INITIAL + PER_ROUND + 1 and (cells["seeds"] == len(SEEDS)).all()
    # No point was proposed twice: every pair is apart in the unit cube.
    box = Box.of({k: tuple(v) for k, v in BOUNDS.items()})
    x = box.unit(cells.select(list(BOUNDS)).to_numpy())
    gaps = np.linalg.norm(x[:, None] - x[None], axis=2)[np.triu_indices(len(x), 1)]
    assert gaps.min() > 0.02
    for name in cells["schedule"].filter(cells["round"] >= 0):
        assert (workdir / f"results/training/0.3/{name}/cosine/seed1/eval.json").exists()
    # Design cells stay out of the grid's tables (and so out of its verdicts), fresh seeds too.
    grid = pl.read_parquet(workdir / "results/analysis/cells.parquet")
    assert set(grid["schedule"]) == {"shuffled", "win"} and set(grid["seed"]) == set(SEEDS)


def test_the_recommendation_and_the_baseline_are_also_measured_on_fresh_seeds(study) -> None:
    workdir, _ = study
    rec = read_json(workdir / "results/design/summary.json")["recommendation"]
    for name in (rec["schedule"], "shuffled"):
        for seed in FRESH:
            assert (workdir / f"results/training/0.3/{name}/cosine/seed{seed}/eval.json").exists()
    assert rec["fresh_seeds"] == FRESH and rec["fresh"]["seeds"] == len(FRESH)
    assert rec["measured"]["seeds"] == len(SEEDS)  # the design seeds' measurement, apart
    assert rec["fresh_versus_baseline"]["seeds"] == len(FRESH)
    points = pl.read_parquet(workdir / "results/design/points.parquet")
    row = points.filter(pl.col("schedule") == rec["schedule"]).row(0, named=True)
    assert row["fresh"] == pytest.approx(rec["fresh"]["mean"]) and row["fresh_seeds"] == 2
    assert points.filter(pl.col("schedule") != rec["schedule"])["fresh"].is_null().all()


def test_the_report_shows_rounds_surface_and_recommendation(study) -> None:
    workdir, _ = study
    page = (workdir / "reports/report.html").read_text()
    text = html.unescape(re.sub(r"<[^>]+>", "", visible_text(page)))
    summary = read_json(workdir / "results/design/summary.json")
    rec = summary["recommendation"]
    assert "Design loop: the next cells worth running" in text
    assert f"Recommended curriculum ({rec['schedule']})" in text
    assert f"Predicted before it ran: {rec['predicted']['mean']:.3f}" in text
    assert f"Measured on the design seeds (which chose it): {rec['measured']['mean']:.3f}" in text
    assert f"Measured on fresh seeds (unbiased): {rec['fresh']['mean']:.3f}" in text
    assert "Against the baseline shuffled, paired by seed on the design seeds" in text
    assert "Against the baseline shuffled, paired by seed on the fresh seeds" in text
    assert "winner's curse" in text and "measured, fresh seeds (unbiased)" in text
    for name in ("design_r0_0", "design_r0_2", "design_r1_1", "design_r2_0"):
        assert name in text
    specs = json.loads(page[page.index("const CHART_SPECS = ") + 20 : page.index(";\nconst EMBED")])
    layers = specs["chart-design"]["layer"]
    assert layers[0]["mark"]["type"] == "rect" and layers[1]["mark"]["type"] == "point"
    surface = pl.read_parquet(workdir / "results/design/surface.parquet")
    assert surface.height == 41 * 41 and 0 < surface["feasible"].mean() < 1


def test_the_same_inputs_give_the_same_proposals_and_a_rerun_trains_nothing(
    study, tmp_path: Path
) -> None:
    workdir, _ = study
    remade_same_bytes(workdir, tmp_path / "again", "results/design/round1/proposals.json")
