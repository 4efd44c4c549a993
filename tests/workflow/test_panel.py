"""The panel stage through the real workflow: the tiny study with `panel:` exports its own
cells and reads an imported table; the exported table reads back into the same out-of-fold
predictions; the report shows both panels."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from curriculab.io import read_json
from curriculab.panel.regressors import cross_validate
from curriculab.panel.table import Panel, read_panel, write_panel
from tests.support.helpers import TINY_CONFIG
from tests.support.report_page import visible_text
from tests.support.workflow import run

REGRESSORS = ["linear", "loglinear", "lightgbm", "gp"]
REPO = Path(__file__).resolve().parents[2]


def _imported(path: Path) -> None:
    """40 runs of three domains whose loss is least at (0.6, 0.3, 0.1)."""
    rng = np.random.default_rng(0)
    weights = rng.dirichlet(np.ones(3), size=(40, 1))
    loss = 3 + ((weights[:, 0, :] - [0.6, 0.3, 0.1]) ** 2).sum(axis=1) + rng.normal(0, 1e-3, 40)
    runs = tuple(f"run{i}" for i in range(40))
    write_panel(Panel(runs, ("x", "y", "z"), weights, np.ones((40, 1)), {"loss": loss}, ""), path)


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("panel")
    _imported(workdir / "runs.csv")
    config = copy.deepcopy(TINY_CONFIG)
    config["panel"] = {
        "late": 0.25, "regressors": REGRESSORS, "folds": 4,
        "tables": {"bowl": {"file": "runs.csv", "metric": "loss", "budget_tokens": 1e9,
                            "max_epochs": 1, "tokens": {d: 1e9 for d in "xyz"}},
                   # not in the working directory: found in the workflow's (it ships there)
                   "olmix": {"weights": "bench/data/olmix/dclm_ratios.csv", "id_column": "run",
                             "metrics": "bench/data/olmix/dclm_metrics.csv",
                             "metric": "arc_easy:rc::olmes"}},
        "propose": {"samples": 2000, "top": 20},
    }  # fmt: skip
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    done = run(workdir, "--cores", "2")
    assert done.returncode == 0, done.stderr[-4000:]
    return workdir


def test_the_study_exports_its_cells_and_reads_back_the_same_predictions(study: Path) -> None:
    own = study / "results/panel/own"
    summary = read_json(own / "summary.json")
    cells = pl.read_parquet(study / "results/analysis/cells.parquet")
    assert summary["runs"] == cells.height and summary["phases"] == 2
    assert summary["phase_shares"] == [0.75, 0.25]
    exported = read_panel(own / "panel.parquet", domains=list(TINY_CONFIG["domains"]))
    predictions = pl.read_parquet(own / "predictions.parquet")
    assert list(exported.runs) == predictions["run"].to_list()
    y = exported.metrics["d1_test_loss"]
    assert np.array_equal(y, predictions["actual"].to_numpy())
    for name in REGRESSORS:  # the exported file alone gives the stage's predictions
        again = cross_validate(name, exported.features(), y, folds=4, seed=0)
        assert np.allclose(again, predictions[f"oof_{name}"].to_numpy(), rtol=0, atol=1e-12), name
    # A d1_last cell has no D1 in its first phase; its last quarter is D1 at most.
    d1 = list(exported.domains).index(TINY_CONFIG["target_domain"])
    last = [i for i, run in enumerate(exported.runs) if "/d1_last/" in run]
    assert last and all(exported.weights[i, 0, d1] < exported.weights[i, 1, d1] for i in last)


def test_an_imported_table_recovers_its_known_optimum(study: Path) -> None:
    summary = read_json(study / "results/panel/bowl/summary.json")
    assert summary["runs"] == 40 and summary["scores"][summary["best"]]["spearman"] > 0.8
    mixture = summary["proposal"]["mixture"]["0"]
    assert abs(mixture["x"] - 0.6) < 0.15 and abs(mixture["y"] - 0.3) < 0.15
    upcoming = summary["next"]  # the next runs to train: four, apart, new
    assert len(upcoming) == 4
    points = np.array([[run["mixture"]["0"][d] for d in "xyz"] for run in upcoming])
    assert np.allclose(points.sum(axis=1), 1)
    assert min(np.linalg.norm(a - b) for i, a in enumerate(points) for b in points[i + 1 :]) >= 0.05
    assert summary["constraints"]["natural"] == pytest.approx({d: 1 / 3 for d in "xyz"})
    page = visible_text((study / "reports/report.html").read_text())
    assert "Next runs worth training" in page
    assert "at most 1 epoch(s) of each domain's tokens at 1,000,000,000 training tokens" in page


def test_the_report_has_a_section_for_each_panel(study: Path) -> None:
    page = (study / "reports/report.html").read_text()
    text = visible_text(page)
    assert "Run panels" in text and "own: " in text and "bowl: 40 runs" in text
    assert 'id="chart-panel-own"' in page and 'id="chart-panel-bowl"' in page


def test_a_table_that_ships_with_the_workflow_is_found_there(study: Path) -> None:
    summary = read_json(study / "results/panel/olmix/summary.json")
    assert summary["runs"] == 127 and len(summary["domains"]) == 24
    assert not (study / "bench").exists()
    assert str(REPO / "bench/data/olmix/dclm_ratios.csv") in summary["source"]
    assert "olmix: 127 runs of 24 domains" in (study / "reports/report.html").read_text()
