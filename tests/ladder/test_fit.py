"""Mixture optima per scale and their prediction across scales (curriculab.ladder.fit), on
synthetic responses from a known power law: no training. The truth is built so that every
domain's optimal amount is exactly log-linear in the budget, as both prediction rules assume."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import optimize

from curriculab.ladder.fit import (
    LEVELS,
    fit_domain,
    interval,
    optimum,
    optimum_bootstrap,
    optimum_delta,
    response,
)
from curriculab.ladder.mixture import optimum_table, prediction_table, scale_fits
from curriculab.ladder.plan import perturbations
from curriculab.ladder.predict import predict
from curriculab.streams.schedules import check_schedule
from tests.support.ladder_truth import BUDGETS, TARGET, A, B, true_weights

SEEDS, NOISE = 3, 0.01  # cells per level, and the seed-to-seed sd of the objective (nats/token)
REPEATS = 100


def simulate(budget: float, rng: np.random.Generator) -> list:
    """Per domain, the fit to its perturbation runs: its amount at 5 levels of the uniform base
    mixture, the others at base, SEEDS noisy measurements of sum_j f_j(x_j) per level. k_j is
    set so that the optimum under the budget is exactly true_weights(budget) (KKT, lambda = 1)."""
    w = true_weights(budget)
    k = (w + A) ** (B + 1) / B
    base = np.full(3, 1 / 3)
    fits = []
    for i in range(3):
        xs, ys = [], []
        for level in LEVELS:
            x = base.copy()
            x[i] *= level
            total = sum(response(x[j], k[j], A[j], B[j], 0.0) for j in range(3))
            xs += [x[i]] * SEEDS
            ys += list(total + rng.normal(0.0, NOISE, SEEDS))
        fits.append(fit_domain(np.array(xs), np.array(ys)))
    return fits


def test_optima_and_predictions_recover_the_truth_and_per_scale_intervals_cover_it() -> None:
    """Every scale's optimum and its delta-method interval, and both rules' point predictions
    (their intervals: tests/ladder/test_coverage.py, with seed effects and lack of fit)."""
    rng = np.random.default_rng(0)
    errors, covered = [], []
    predicted = {"all": [], "autoscale": []}
    for _ in range(REPEATS):
        estimates = []
        for budget in BUDGETS:
            best, cov = optimum_delta(simulate(budget, rng))
            estimates.append(best)
            truth = true_weights(budget)
            errors.append(np.abs(best - truth).max())
            covered += list(np.abs(best - truth) <= 1.959964 * np.sqrt(np.diag(cov)))
        for rule in predict_rules():
            point = predict(BUDGETS, np.array(estimates), TARGET, rule)
            predicted[rule].append(np.abs(point - true_weights(TARGET)).max())
    # Stated tolerances (weights, largest error over the three domains): measured means about
    # 0.005 (optimum) and 0.007 (prediction), maxima 0.014 and 0.019.
    assert np.mean(errors) < 0.01 and np.max(errors) < 0.03
    for rule in predict_rules():
        assert np.mean(predicted[rule]) < 0.015 and np.max(predicted[rule]) < 0.05, rule
    assert 0.90 <= np.mean(covered) <= 0.99, np.mean(covered)  # measured 0.96


def predict_rules() -> tuple[str, ...]:
    return ("all", "autoscale")


def test_autoscale_rule_is_n2_squared_over_n1_on_a_geometric_ladder() -> None:
    rng = np.random.default_rng(3)
    weights = rng.dirichlet(np.ones(4), size=3)  # (scales, K)
    n1, n2 = weights[1] * 2.0, weights[2] * 4.0  # amounts at budgets 2 and 4
    expected = n2 * n2 / n1
    got = predict(BUDGETS, weights, 8.0, "autoscale")
    assert got == pytest.approx(expected / expected.sum(), rel=1e-9)
    # With two scales, the least-squares line is the line through them: the rules agree.
    assert predict(BUDGETS[1:], weights[1:], 8.0, "all") == pytest.approx(got, rel=1e-9)


def test_the_optimum_matches_a_general_constrained_solver() -> None:
    rng = np.random.default_rng(7)
    for _ in range(20):
        k, a, b = rng.uniform(0.05, 1.0, 4), rng.uniform(0.0, 0.2, 4), rng.uniform(0.3, 2.0, 4)
        params = np.column_stack([k, a, b, np.zeros(4)])
        mine = optimum(params)

        def total(x: np.ndarray, k=k, a=a, b=b) -> float:
            return float(np.sum(k * (x + a) ** (-b)))

        solved = optimize.minimize(
            total, np.full(4, 0.25), method="SLSQP", bounds=[(0.0, 1.0)] * 4,
            constraints={"type": "eq", "fun": lambda x: x.sum() - 1.0}, options={"ftol": 1e-14},
        )  # fmt: skip
        assert mine.sum() == pytest.approx(1.0) and np.all(mine >= 0)
        assert total(mine) <= solved.fun + 1e-9
        assert mine == pytest.approx(solved.x, abs=2e-4)


def test_a_fit_needs_five_levels_and_an_unknown_rule_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 5 levels"):
        fit_domain(np.array([0.1, 0.2, 0.3, 0.4] * 2), np.arange(8.0))
    with pytest.raises(ValueError, match="unknown rule"):
        predict(BUDGETS, np.full((3, 2), 0.5), 8.0, "median")


def test_perturbation_runs_and_their_fits_recover_the_optimum_at_one_scale() -> None:
    """The runs of one scale from the config's base mixture and levels, each a valid static
    mixture; the objective of every run (the known power law, noisy, 3 seeds) fitted back."""
    domains = ["code", "recipes", "wiki"]
    runs = perturbations(dict.fromkeys(domains, 1.0), 90_000, LEVELS)
    assert len(runs) == 1 + 4 * len(domains) and runs[0].tokens == 90_000
    for run in runs[1:]:
        assert run.tokens == round(30_000 * (2 + run.level))
        shares = run.spec()["phases"][0]["shares"]
        assert sum(shares.values()) == pytest.approx(1.0, abs=1e-9)
        assert check_schedule(run.spec(), domains, "recipes") is None
    w = true_weights(2.0)
    k = (w + A) ** (B + 1) / B
    rng = np.random.default_rng(11)
    rows = [
        {"run": run.name, "seed": seed, "objective": float(
            sum(response(run.amounts[d] / 90_000, k[j], A[j], B[j], 0.0)
                for j, d in enumerate(domains)) + rng.normal(0.0, NOISE))}
        for run in runs for seed in range(SEEDS)
    ]  # fmt: skip
    fits = scale_fits(runs, pl.DataFrame(rows), 90_000)
    table = optimum_table(fits, "s2", 90_000, seed=0)
    assert table["weight"].to_numpy() == pytest.approx(w, abs=0.03)
    assert (table["ci_low"] < table["ci_high"]).all() and table["outside"].is_null().all()
    with pytest.raises(ValueError, match="include 1"):
        perturbations({"a": 1.0, "b": 1.0}, 1000, levels=(0.5, 2.0, 3.0, 4.0, 5.0))


def test_the_prediction_table_gives_both_rules_with_their_intervals() -> None:
    """Optima exactly on the law, every seed's own a little off: both rules give the truth,
    with an interval around it that the seeds alone make (no lack of fit to find)."""
    rng = np.random.default_rng(5)
    weights = np.array([true_weights(b) for b in BUDGETS])  # (S, K)
    seeds = weights[:, None] * np.exp(rng.normal(0.0, 0.05, (3, 4, 3)))  # (S, n, K)
    seeds /= seeds.sum(axis=-1, keepdims=True)
    measured = (np.full((3, 3), 0.01), np.full((3, 3), 0.99))
    table = prediction_table(BUDGETS, weights, seeds, measured, TARGET, ["code", "recipes",
                             "wiki"], draws=2000, seed=0)  # fmt: skip
    assert table.height == 6 and set(table["rule"]) == {"autoscale", "all"}
    for rule in ("autoscale", "all"):
        rows = table.filter(pl.col("rule") == rule)
        assert rows["weight"].to_numpy() == pytest.approx(true_weights(TARGET), abs=1e-9)
        assert (rows["ci_low"] < rows["weight"]).all() and (rows["weight"] < rows["ci_high"]).all()
        assert (rows["law_df"] == 2).all() and (rows["lack_of_fit"] == 0.0).all()
        assert (rows["seed_sd"] > 0).all() and (rows["inputs_outside"] == 0).all()
        assert not rows["beyond_levels"].any() and (rows["floored"] == 0).all()


def test_the_bootstrap_interval_recovers_the_optimum_and_covers_it() -> None:
    """The fallback interval (a parametric bootstrap of the fits), on the same known power law:
    10 repeats x 3 domains, 50 refits each (measured: coverage 0.95 over 20 repeats of 100)."""
    rng = np.random.default_rng(4)
    covered = []
    for repeat in range(10):
        boot = optimum_bootstrap(simulate(2.0, rng), repeat, 50)
        low, high = interval(boot)
        truth = true_weights(2.0)
        assert boot.shape == (50, 3) and np.allclose(boot.sum(axis=1), 1.0)
        assert np.abs(np.median(boot, axis=0) - truth).max() < 0.02
        covered += list((low <= truth) & (truth <= high))
    assert np.mean(covered) >= 0.8, np.mean(covered)


def test_a_corner_optimum_is_censored_by_the_all_scales_rule_and_flagged_for_autoscale() -> None:
    """wiki's optimum is 0 at s2 (a corner of the simplex, below the amounts its fit saw): the
    all-scales line takes it at the lowest amount measured, so FLOOR does not decide it, and
    says so; AutoScale's rule keeps its FLOOR, and says so too."""
    weights = np.array([true_weights(b) for b in BUDGETS])
    weights[1] = [0.6, 0.4, 0.0]
    low, high = np.full((3, 3), 0.1), np.full((3, 3), 0.9)
    seeds = np.repeat(weights[:, None], 2, axis=1)

    def table(optima: np.ndarray) -> pl.DataFrame:
        return prediction_table(BUDGETS, optima, seeds, (low, high), TARGET,
                                ["code", "recipes", "wiki"], draws=500, seed=0)  # fmt: skip

    got = table(weights)
    at_bound = weights.copy()
    at_bound[1, 2] = 0.1
    rows = {rule: got.filter(pl.col("rule") == rule) for rule in ("all", "autoscale")}
    censored = table(at_bound).filter(pl.col("rule") == "all")
    assert rows["all"]["weight"].to_numpy() == pytest.approx(censored["weight"].to_numpy())
    assert rows["all"]["inputs_outside"].to_list() == [0, 0, 1]
    assert rows["all"]["floored"].to_list() == [0, 0, 0]
    assert rows["autoscale"]["inputs_outside"].to_list() == [0, 0, 1]
    assert rows["autoscale"]["floored"].to_list() == [0, 0, 1]
    floor_point = predict(BUDGETS, weights, TARGET, "autoscale")  # the rule as published
    assert rows["autoscale"]["weight"].to_numpy() == pytest.approx(floor_point)
    # wiki 0.001 at s2 and 0.26 at s3: AutoScale's line puts it beyond the levels measured
    assert rows["autoscale"]["beyond_levels"].to_list()[2]
