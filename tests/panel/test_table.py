"""Run tables in and out: the one-file format round-trips, a pair joins on its ids, and every
bad input is one line naming the file, row or column."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from curriculab.panel.table import Panel, PanelError, read_pair, read_panel, write_panel

REGMIX = Path(__file__).resolve().parents[2] / "bench" / "data" / "regmix"
OLMIX = Path(__file__).resolve().parents[2] / "bench" / "data" / "olmix"
LABELS = ("", "run", "name", "index")  # olmix's columns that are not domains or metrics


def _panel(phases: int = 1, runs: int = 12, seed: int = 0) -> Panel:
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.ones(3), size=(runs, phases))
    shares = rng.dirichlet(np.ones(phases), size=runs) if phases > 1 else np.ones((runs, 1))
    metrics = {"loss": rng.normal(3, 0.1, runs), "other": rng.normal(1, 0.1, runs)}
    return Panel(
        tuple(f"r{i}" for i in range(runs)), ("a", "b", "c"), weights, shares, metrics, "x"
    )


@pytest.mark.parametrize(("phases", "suffix"), [(1, ".csv"), (2, ".parquet"), (3, ".csv")])
def test_the_one_file_format_round_trips(tmp_path: Path, phases: int, suffix: str) -> None:
    panel = _panel(phases)
    write_panel(panel, tmp_path / f"runs{suffix}")
    back = read_panel(tmp_path / f"runs{suffix}")
    assert back.runs == panel.runs and back.domains == panel.domains
    assert np.array_equal(back.weights, panel.weights) and np.array_equal(back.shares, panel.shares)
    assert back.metrics.keys() == panel.metrics.keys()
    for name, values in panel.metrics.items():
        assert np.array_equal(back.metrics[name], values)
    assert back.features().shape == (12, phases * 3 + (phases if phases > 1 else 0))


def test_the_regmix_pair_reads_as_published() -> None:
    panel = read_pair(
        REGMIX / "train_mixture_1m.csv", REGMIX / "train_pile_loss_1m.csv",
        strip="train_the_pile_", strip_metric="metric/the_pile_",
    )  # fmt: skip
    assert len(panel.runs) == 512 and len(panel.domains) == 17 and panel.phases == 1
    assert "pile_cc" in panel.domains and "pile_cc_val_loss" in panel.metrics
    assert np.allclose(panel.weights.sum(axis=2), 1, atol=0.01)
    assert panel.metrics["pile_cc_val_loss"].min() > 2


def test_the_olmix_pair_reads_as_published() -> None:
    """olmix's DCLM swarm: the labels both files carry are dropped, each run's weights are its
    row of ratios.csv, and its metrics are the row of metrics.csv with the same run id."""
    ratios = list(csv.reader((OLMIX / "dclm_ratios.csv").open()))
    metrics = list(csv.reader((OLMIX / "dclm_metrics.csv").open()))
    panel = read_pair(OLMIX / "dclm_ratios.csv", OLMIX / "dclm_metrics.csv", id_column="run")
    domains = [c for c in ratios[0] if c not in LABELS]
    tasks = [c for c in metrics[0] if c not in LABELS]
    assert list(panel.domains) == domains and len(domains) == 24
    assert list(panel.metrics) == tasks and panel.runs == tuple(r[1] for r in ratios[1:])
    by_run = {row[1]: row for row in metrics[1:]}
    for i, row in enumerate(ratios[1:]):
        raw = [float(row[ratios[0].index(d)]) for d in domains]
        assert np.array_equal(panel.weights[i, 0], raw)
        other = by_run[row[1]]
        for task in (tasks[0], tasks[-1]):
            assert panel.metrics[task][i] == float(other[metrics[0].index(task)])


def test_a_pairs_shared_label_must_agree(tmp_path: Path) -> None:
    weights = _write(tmp_path / "w.csv", "run,name,a,b\nr1,one,0.5,0.5\nr2,two,0.2,0.8\n")
    metrics = _write(tmp_path / "m.csv", "run,name,loss\nr2,two,3.5\nr1,uno,3.0\n")
    with pytest.raises(PanelError, match=r"m.csv: column 'name', .* reads 'uno' for run 'r1'"):
        read_pair(weights, metrics)
    metrics = _write(tmp_path / "m.csv", "run,name,loss\nr2,two,3.5\nr1,one,3.0\n")
    panel = read_pair(weights, metrics)
    assert panel.domains == ("a", "b") and list(panel.metrics) == ["loss"]
    assert np.array_equal(panel.metrics["loss"], [3.0, 3.5])


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


HEAD = "run,weight:a,weight:b,metric:m\n"
BAD = [
    (HEAD + "x,0.5,0.6,1\n", r"row 2 \(run 'x'\): phase 0 weights sum to 1.1000"),
    (HEAD + "x,0.5,0.5,\n", r"row 2, column 'metric:m': missing metric"),
    (HEAD + "x,0.5,0.5,high\n", r"row 2, column 'metric:m': 'high' is not a number"),
    ("run,weight:a,weight:zz,metric:m\nx,0.5,0.5,1\n", r"domain 'zz': not one of the domains"),
    (HEAD + "x,0.5,0.5,1\nx,0.4,0.6,2\n", r"row 3, column 'run': duplicate run id 'x'"),
    ("run,weight:0:a,weight:0:b,weight:1:a,weight:1:b,metric:m\nx,1,0,0,1,1\n", "'share:0'"),
    ("weight:a,weight:b,metric:m\n0.5,0.5,1\n", r"no column 'run'"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_bad_tables_are_one_line_naming_the_place(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path / "runs.csv", text)
    with pytest.raises(PanelError, match=message) as error:
        read_panel(path, domains=["a", "b"])
    assert "\n" not in str(error.value) and str(path) in str(error.value)


def test_a_pair_names_a_run_missing_from_the_other_file(tmp_path: Path) -> None:
    weights = _write(tmp_path / "w.csv", "id,a,b\n1,0.5,0.5\n2,0.2,0.8\n")
    metrics = _write(tmp_path / "m.csv", "id,loss\n1,3.0\n")
    with pytest.raises(PanelError, match=r"w.csv: run '2' has no row in the other file"):
        read_pair(weights, metrics)
    metrics = _write(tmp_path / "m.csv", "id,loss\n2,3.5\n1,3.0\n")
    panel = read_pair(weights, metrics)
    assert panel.metrics["loss"].tolist() == [3.0, 3.5]  # joined on the id, not the row
