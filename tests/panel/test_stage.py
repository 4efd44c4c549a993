"""An imported table's own constraints through the stage's body (run_panel): its tokens, token
budget and epoch cap bind the proposal, its natural mixture is what `kl` pulls toward, and a
domain the table lacks (or leaves out) is one line naming the config key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from curriculab.io import read_json
from curriculab.panel.plan import check_panel
from curriculab.panel.stage import run_panel
from curriculab.panel.table import Panel, PanelError, write_panel

OPTIMUM = np.array([0.6, 0.3, 0.1])  # of x, y, z


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """60 runs of three domains whose loss is a bowl around OPTIMUM."""
    root = tmp_path_factory.mktemp("stage")
    rng = np.random.default_rng(0)
    weights = rng.dirichlet(np.ones(3), size=(60, 1))
    loss = 3 + ((weights[:, 0, :] - OPTIMUM) ** 2).sum(axis=1) + rng.normal(0, 1e-3, 60)
    runs = tuple(f"run{i}" for i in range(60))
    panel = Panel(runs, ("x", "y", "z"), weights, np.ones((60, 1)), {"loss": loss}, "")
    write_panel(panel, root / "runs.csv")
    return root


def _run(root: Path, name: str, table: dict[str, Any], kl: float = 0.0) -> dict[str, Any]:
    raw = {
        "own": False, "regressors": ["linear", "gp"], "folds": 4,
        "tables": {"bowl": {"file": "runs.csv", "metric": "loss", **table}},
        "propose": {"samples": 4000, "top": 20, "next": 2, "kl": kl},
    }  # fmt: skip
    spec = check_panel(raw, root)
    return run_panel(spec.tables["bowl"], spec, root, root / "results" / name)


def _mixture(summary: dict[str, Any]) -> np.ndarray:
    return np.array([summary["proposal"]["mixture"]["0"][d] for d in "xyz"])


def test_the_tables_tokens_and_epochs_bind_its_proposal(root: Path) -> None:
    free = _run(root, "free", {})
    assert abs(_mixture(free)[0] - OPTIMUM[0]) < 0.15  # the control: x near its optimum
    assert free["constraints"]["tokens"] is None and free["constraints"]["natural"] is None
    # x has 2M tokens: one pass at a 10M budget is at most 0.2 of it.
    capped = {"tokens": {"x": 2e6, "y": 8e6, "z": 8e6}, "budget_tokens": 1e7, "max_epochs": 1}
    summary = _run(root, "capped", capped)
    mixture = _mixture(summary)
    assert 0.15 < mixture[0] <= 0.2 + 1e-9
    for run in summary["next"]:  # the next runs keep the cap too
        assert run["mixture"]["0"]["x"] <= 0.2 + 1e-9
    recorded = read_json(root / "results/capped/summary.json")["constraints"]
    assert recorded["tokens"] == {"x": 2e6, "y": 8e6, "z": 8e6}
    assert recorded["natural"] == pytest.approx({"x": 1 / 9, "y": 4 / 9, "z": 4 / 9})
    assert (recorded["budget_tokens"], recorded["max_epochs"]) == (1e7, 1)


def test_kl_pulls_toward_the_tables_natural_mixture(root: Path) -> None:
    natural = {"x": 0.1, "y": 0.1, "z": 0.8}
    target = np.array(list(natural.values()))
    free = _mixture(_run(root, "nokl", {"natural": natural}))
    pulled = _mixture(_run(root, "kl", {"natural": natural}, kl=0.5))
    assert np.abs(pulled - target).sum() < np.abs(free - target).sum() - 0.4
    # A table's own kl wins over panel.propose's, either way.
    assert np.array_equal(_mixture(_run(root, "own_kl", {"natural": natural, "kl": 0.5})), pulled)
    unpulled = _mixture(_run(root, "no_kl", {"natural": natural, "kl": 0.0}, kl=0.5))
    assert np.array_equal(unpulled, free)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"tokens": {"x": 1, "y": 1, "w": 1}}, r"'panel.tables.bowl.tokens': domain 'w' is not in"),
        ({"tokens": {"x": 1, "y": 1}}, r"'panel.tables.bowl.tokens': no value for .* domain 'z'"),
        ({"natural": {"x": 0.5, "y": 0.3, "z": 0.1}}, r"bowl.natural': .* sum to 0.9000"),
    ],
)  # fmt: skip
def test_a_bad_prior_names_its_key(root: Path, table: dict[str, Any], message: str) -> None:
    with pytest.raises(PanelError, match=message) as error:
        _run(root, "bad", table)
    assert "\n" not in str(error.value)
    assert not (root / "results" / "bad").exists()  # nothing half-written
