"""Regressors and proposals by simulation with known truth: a metric that is a known function of
the mixture (one phase, and two phases with their own optima) is recovered, its optimum is
proposed within a stated tolerance, and a metric of pure noise ranks nothing."""

from __future__ import annotations

import numpy as np
import pytest

from curriculab.panel.propose import Constraints, next_runs, propose
from curriculab.panel.regressors import choose, cross_validate, rank_scores
from curriculab.panel.table import Panel, PanelError

OPTIMA = np.array([[0.5, 0.3, 0.2], [0.15, 0.25, 0.6]])  # phase 0, phase 1
TOLERANCE = 0.12  # largest |proposed - true optimum| of any weight


def _law(weights: np.ndarray) -> np.ndarray:
    """(R,) a loss minimal at OPTIMA: a quadratic bowl per phase, the phases weighted 2:1."""
    phases = weights.shape[1]
    return 3.0 + sum(
        (2.0 if p == 0 else 1.0) * ((weights[:, p, :] - OPTIMA[p]) ** 2).sum(axis=1)
        for p in range(phases)
    )


def _panel(phases: int, runs: int = 160, noise: float = 0.002, seed: int = 0) -> Panel:
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.ones(3), size=(runs, phases))
    shares = np.tile([0.7, 0.3][:phases] if phases == 2 else [1.0], (runs, 1))
    loss = _law(weights) + rng.normal(0, noise, runs)
    names = tuple(f"r{i}" for i in range(runs))
    return Panel(names, ("a", "b", "c"), weights, shares, {"loss": loss}, "simulated")


@pytest.mark.parametrize("phases", [1, 2])
def test_the_known_optimum_is_proposed_within_tolerance(phases: int) -> None:
    panel = _panel(phases)
    choice = choose(panel.features(), panel.metrics["loss"], folds=5, seed=0)
    assert choice.scores[choice.best]["spearman"] > 0.9
    result = propose(panel, "loss", choice.best, samples=5000, top=50, seed=0)
    for p in range(phases):
        proposed = np.array([result["mixture"][str(p)][d] for d in panel.domains])
        assert np.abs(proposed - OPTIMA[p]).max() < TOLERANCE, (p, proposed, choice.best)
        assert proposed.sum() == pytest.approx(1.0)
    truth = _law(np.array([[list(result["mixture"][str(p)].values()) for p in range(phases)]]))
    assert result["predicted"] == pytest.approx(float(truth[0]), abs=0.05)
    assert result["interval"][0] <= result["interval"][1]


def test_noise_ranks_nothing() -> None:
    rng = np.random.default_rng(1)
    x = rng.dirichlet(np.ones(3), size=100)
    y = rng.normal(0, 1, 100)
    for name in ("linear", "lightgbm"):
        rho = rank_scores(cross_validate(name, x, y, folds=5, seed=0), y)["spearman"]
        assert abs(rho) < 0.3, name


def test_epoch_caps_bind_the_proposal() -> None:
    """Domain a holds few tokens: with at most 1 epoch it cannot take its optimal 0.5."""
    panel = _panel(1)
    caps = Constraints(budget_tokens=1000.0, available_tokens=np.array([200.0, 1e6, 1e6]),
                       max_epochs=1.0)  # fmt: skip
    result = propose(panel, "loss", "gp", caps, samples=5000, top=50, seed=0)
    assert result["mixture"]["0"]["a"] <= 0.2 + 1e-9
    with pytest.raises(PanelError, match="no mixture keeps every domain within max_epochs"):
        propose(
            panel, "loss", "gp", Constraints(1 / 3 * np.ones(3), 1000.0, np.full(3, 100.0), 1.0)
        )


def test_fewer_runs_than_folds_is_refused() -> None:
    x, y = np.eye(3), np.arange(3.0)
    with pytest.raises(PanelError, match="3 runs are fewer than the 5 folds"):
        cross_validate("linear", x, y, folds=5)


@pytest.mark.parametrize("regressor", ["lightgbm", "gp"])  # those that can fit a bowl
def test_the_next_runs_are_new_and_promising_under_any_regressor(regressor: str) -> None:
    """The chosen regressor is the surrogate (its fold models' spread is the sd where it has
    none of its own): the next runs lie apart from the runs and from one another, and by the
    known law each is better than most runs of the panel."""
    panel = _panel(1)
    upcoming = next_runs(panel, "loss", regressor, count=4, samples=3000, seed=0)
    points = np.array([[run["mixture"]["0"][d] for d in panel.domains] for run in upcoming])
    assert len(points) == 4 and all(run["sd"] > 0 for run in upcoming)
    apart = np.linalg.norm(points[:, None, :] - panel.weights[None, :, 0, :], axis=2)
    assert apart.min() >= 0.05
    assert min(np.linalg.norm(a - b) for i, a in enumerate(points) for b in points[i + 1 :]) >= 0.05
    truth = _law(points[:, None, :])
    assert truth.max() < np.quantile(panel.metrics["loss"], 0.25), (regressor, truth)


def test_the_proposal_stays_within_the_runs_unless_told() -> None:
    """The runs cover a in [0, 0.3] only and the loss falls as a grows: a linear fit would
    propose far more a than any run had; within the runs' range it stops at 0.3."""
    rng = np.random.default_rng(2)
    a = rng.uniform(0, 0.3, 80)
    rest = rng.dirichlet(np.ones(2), size=80) * (1 - a)[:, None]
    weights = np.column_stack([a, rest])[:, None, :]
    loss = 3 - a + rng.normal(0, 1e-3, 80)
    panel = Panel(tuple(f"r{i}" for i in range(80)), ("a", "b", "c"), weights,
                  np.ones((80, 1)), {"loss": loss}, "simulated")  # fmt: skip
    inside = propose(panel, "loss", "linear", samples=4000, top=20, seed=0)
    assert 0.25 < inside["mixture"]["0"]["a"] <= 0.3 + 1e-9
    outside = propose(panel, "loss", "linear", Constraints(within_runs=False), samples=4000,
                      top=20, seed=0)  # fmt: skip
    assert outside["mixture"]["0"]["a"] > 0.5
