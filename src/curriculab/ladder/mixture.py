"""The ladder's mixture tables (torch-free): every scale's fits and optimum from its cells, each
seed's own optimum, the prediction at the target with its interval, and every cell's epochs
(docs/stages/ladder.md). The numerics live in curriculab.ladder.fit and .predict."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from curriculab.analysis.statistics import Z95
from curriculab.ladder.fit import (
    DomainFit,
    degenerate,
    fit_domain,
    interval,
    optimum_bootstrap,
    optimum_delta,
    seed_optimum,
)
from curriculab.ladder.plan import TARGET, Ladder, Perturbation, cell_epochs, split_name
from curriculab.ladder.predict import (
    FLOOR,
    RULES,
    Spread,
    coefficients,
    lack_of_fit,
    outside,
    predict,
    prediction_draws,
    rule_inputs,
    seed_cov,
)

BOOTSTRAP = 200  # refits of a parametric bootstrap (ladder.fit.optimum_bootstrap)
SIDE = {-1: "below", 0: None, 1: "above"}  # an optimum against its domain's measured amounts


def _domain_rows(
    runs: Sequence[Perturbation], objective: pl.DataFrame, tokens: int, domain: str
) -> pl.DataFrame:
    """A domain's cells (its perturbation runs and the base run, every seed) with its amount
    x (units of the scale's budget). `objective`: columns run (a Perturbation's name), seed and
    objective."""
    mine = [r for r in runs if r.domain in (None, domain)]
    amount = {r.name: r.amounts[domain] / tokens for r in mine}
    rows = objective.filter(pl.col("run").is_in(list(amount)))
    return rows.with_columns(x=pl.col("run").replace_strict(amount, return_dtype=pl.Float64))


def scale_fits(
    runs: Sequence[Perturbation], objective: pl.DataFrame, tokens: int
) -> dict[str, DomainFit]:
    """Per domain, the fit of the objective to its amount over its cells, every seed."""
    fits = {}
    for domain in runs[0].amounts:
        rows = _domain_rows(runs, objective, tokens, domain)
        fits[domain] = fit_domain(rows["x"].to_numpy(), rows["objective"].to_numpy())
    return fits


def seed_optima(
    runs: Sequence[Perturbation], objective: pl.DataFrame, tokens: int, fits: dict[str, DomainFit]
) -> np.ndarray:
    """(n, K) every seed's own optimum at this scale (ladder.fit.seed_optimum), seeds sorted."""
    rows = {d: _domain_rows(runs, objective, tokens, d) for d in fits}
    out = []
    for seed in sorted(set(objective["seed"])):
        mine = [rows[d].filter(pl.col("seed") == seed) for d in fits]
        data = [(r["x"].to_numpy(), r["objective"].to_numpy()) for r in mine]
        out.append(seed_optimum(list(fits.values()), data))
    return np.array(out)


def optimum_table(
    fits: Mapping[str, DomainFit], scale: str, tokens: int, seed: int
) -> pl.DataFrame:
    """Per domain: the optimal weight at this scale with its 95% interval, the optimal tokens,
    the amounts the fit saw (low, high) and whether the optimum lies outside them (`outside`:
    below or above; the power law's extrapolation, censored in the all-scales line), the fit's
    parameters, residual sd and signal (its fitted drop over the levels). The interval is the
    delta method on the fits' covariance (`method` delta) where the optimum is inside the
    simplex and no fit sits on a bound, else the quantiles of a parametric bootstrap of
    BOOTSTRAP refits (`method` bootstrap). Both treat the cells as independent; the seeds'
    shared quirks enter the prediction's interval (ladder.predict)."""
    names = list(fits)
    chosen = [fits[d] for d in names]
    best, cov = optimum_delta(chosen)
    if np.all(best > 1e-4) and not any(degenerate(f) for f in chosen):
        method = "delta"
        half = Z95 * np.sqrt(np.clip(np.diag(cov), 0.0, None))
        low, high = np.clip(best - half, 0.0, 1.0), np.clip(best + half, 0.0, 1.0)
    else:
        method = "bootstrap"
        low, high = interval(optimum_bootstrap(chosen, seed, BOOTSTRAP))
    side = outside(best, np.array([f.low for f in chosen]), np.array([f.high for f in chosen]))
    rows = [
        {
            "scale": scale, "tokens": tokens, "domain": d, "weight": float(best[i]),
            "ci_low": float(low[i]), "ci_high": float(high[i]), "method": method,
            "optimal_tokens": float(best[i] * tokens), "low": fits[d].low, "high": fits[d].high,
            "outside": SIDE[int(side[i])],
            **dict(zip(("k", "a", "b", "c"), map(float, fits[d].params), strict=True)),
            "residual_sd": fits[d].residual_sd, "signal": fits[d].signal, "n": fits[d].n,
        }
        for i, d in enumerate(names)
    ]  # fmt: skip
    return pl.DataFrame(rows, schema_overrides={"outside": pl.String})


def prediction_table(
    tokens: Sequence[float],
    optima: np.ndarray,
    seeds: np.ndarray,
    measured: tuple[np.ndarray, np.ndarray],
    target: float,
    domains: Sequence[str],
    draws: int,
    seed: int,
) -> pl.DataFrame:
    """Per rule and domain: the predicted optimal weight at the `target` budget and its 95%
    interval (ladder.predict), from the optima (S, K) at budgets `tokens` (S,), every seed's
    own (S, n, K) and the amounts each fit saw, `measured` = (low, high), each (S, K). Also:
    scales whose optimum lay outside those amounts (`inputs_outside`: censored at the bound by
    the all-scales rule, used as fitted by AutoScale's), the weights AutoScale's rule took as
    FLOOR (`floored`), whether the prediction lies beyond the amounts measured at the top scale
    (`beyond_levels`), the lack of fit's sd, its degrees of freedom and the seeds' sd."""
    tokens = np.asarray(tokens, dtype=np.float64)
    low, high = measured
    side = outside(optima, low, high) != 0
    rng = np.random.default_rng(seed)

    def log_amounts(rule: str) -> tuple[np.ndarray, np.ndarray]:
        """(S, K) and (S, n, K) log amounts of the optima and every seed's, as `rule` takes
        them (FLOOR only ever touches AutoScale's: the censored ones are at least `low`)."""
        taken = rule_inputs(optima, low, high, rule)
        taken_seeds = rule_inputs(seeds, low[:, None], high[:, None], rule)
        t = np.log(tokens)
        return (np.log(np.maximum(taken, FLOOR)) + t[:, None],
                np.log(np.maximum(taken_seeds, FLOOR)) + t[:, None, None])  # fmt: skip

    # the law's lack of fit, once, from the censored optima (a floored corner is no datum)
    censored, censored_seeds = log_amounts("all")
    tau2, law_df = lack_of_fit(tokens, censored, seed_cov(censored_seeds)[0])
    rows = []
    for rule in RULES:
        c = coefficients(tokens, target, rule)
        taken = rule_inputs(optima, low, high, rule)
        weights = predict(tokens, taken, target, rule)
        log_n, seed_log_n = log_amounts(rule)
        sigma, seed_df = seed_cov(seed_log_n)
        part = Spread(float(c @ sigma @ c), seed_df, tau2 * (1 + float(c @ c)), law_df, tau2**0.5)
        ci_low, ci_high = interval(prediction_draws(c @ log_n, part, draws, rng))
        beyond = outside(weights, low[-1], high[-1]) != 0
        for i, d in enumerate(domains):
            rows.append({
                "rule": rule, "tokens": target, "domain": d, "weight": float(weights[i]),
                "ci_low": float(ci_low[i]), "ci_high": float(ci_high[i]),
                "inputs_outside": int(side[c != 0, i].sum()),
                "floored": int((taken[c != 0, i] < FLOOR).sum()),
                "beyond_levels": bool(beyond[i]), "lack_of_fit": part.tau,
                "law_df": part.law_df, "seed_sd": float(np.sqrt(part.seed_var)),
            })  # fmt: skip
    return pl.DataFrame(rows)


def epochs_table(
    ladder: Ladder,
    blocks: Mapping[str, int],
    target: str,
    ratio: float,
    domains: Sequence[str],
    check: Mapping[str, Mapping[str, float]],
) -> pl.DataFrame:
    """Every ladder cell's epochs of every domain (ladder.plan.cell_epochs): each scale's runs
    and the check's mixtures (`check`: mixture -> weights), with `over_cap` where they exceed
    ladder.max_epochs (only the check's predicted and smallest-scale mixtures can: the others
    were refused when their streams were built)."""
    cap = np.inf if ladder.max_epochs is None else ladder.max_epochs
    rows = []
    for scale in (*ladder.scales, ladder.target):
        for name in ladder.names(scale.name, domains):
            epochs = cell_epochs(ladder, name, blocks, target, ratio, check)
            rows += [
                {"scale": scale.name, "run": split_name(name)[1], "domain": d,
                 "epochs": float(e), "over_cap": bool(e > cap + 1e-9)}
                for d, e in epochs.items()
            ]  # fmt: skip
    return pl.DataFrame(rows)


def flag_predictions(predictions: pl.DataFrame, epochs: pl.DataFrame) -> pl.DataFrame:
    """The predictions with the epochs each predicted mixture takes at the target, and
    `over_cap` where that is more than ladder.max_epochs (the check trains it as predicted)."""
    mine = epochs.filter(
        pl.col("scale") == TARGET, pl.col("run").str.starts_with("predicted_")
    ).select(
        pl.col("run").str.strip_prefix("predicted_").alias("rule"), "domain", "epochs", "over_cap"
    )
    return predictions.join(mine, on=["rule", "domain"], how="left")


def check_mixtures(predictions: pl.DataFrame, smallest: Mapping[str, float]) -> dict[str, Any]:
    """The check's data-dependent mixtures: both predictions and the smallest scale's optimum."""
    check: dict[str, Any] = {
        f"predicted_{rule}": dict(
            predictions.filter(pl.col("rule") == rule).select("domain", "weight").iter_rows()
        )
        for rule in ("all", "autoscale")
    }
    check["smallest"] = dict(smallest)
    return check
