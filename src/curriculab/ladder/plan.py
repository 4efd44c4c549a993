"""The perturbation runs of one scale (AutoScale's "Direct Data Optimization", with more levels)
and the mixture optimum they give (torch-free).

At a scale with token budget B and a base mixture w (natural or uniform), the base run trains
on w_i B tokens of each domain. For every domain i and every level l other than 1, a run trains
on l w_i B tokens of domain i and the same w_j B tokens of every other domain, so its budget is
B (1 + (l - 1) w_i). The objective's response to x_i = l w_i (the amount in units of B) is then
fitted per domain (ladder.fit), using the base run at every domain's level 1. With the default
five levels this is 4 m + 1 runs for m domains (AutoScale: 2 m + 1, no residuals).

A run is a static mixture: one `stages` phase with the run's shares, under a budget of its own
(`Perturbation.tokens`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from curriculab.analysis.statistics import Z95
from curriculab.ladder.fit import LEVELS, DomainFit, fit_domain, interval, optimum_delta, predict

BASE = "base"


@dataclass(frozen=True)
class Perturbation:
    """One run of a scale: its name, the domain it perturbs (None: the base run) and level,
    and the tokens of every domain."""

    name: str
    domain: str | None
    level: float
    amounts: dict[str, float]

    @property
    def tokens(self) -> int:
        """The run's budget: its domains' tokens summed."""
        return round(sum(self.amounts.values()))

    def spec(self) -> dict[str, Any]:
        """The run's schedule: one phase at its shares (a static mixture)."""
        total = sum(self.amounts.values())
        shares = {d: round(a / total, 6) for d, a in self.amounts.items()}
        shares[max(shares, key=shares.get)] += round(1.0 - sum(shares.values()), 6)
        return {"family": "stages", "phases": [{"fraction": 1.0, "shares": shares}]}


def perturbations(
    base: Mapping[str, float], tokens: int, levels: Sequence[float] = LEVELS
) -> list[Perturbation]:
    """The base run and, per domain and level other than 1, its perturbation run. `base`:
    the base mixture's weights (normalised here)."""
    if 1.0 not in levels or len(levels) < 5 or min(levels) <= 0:
        raise ValueError(f"levels must be positive, include 1 and number at least 5: {levels}")
    total = sum(base.values())
    amounts = {d: w / total * tokens for d, w in base.items()}
    runs = [Perturbation(BASE, None, 1.0, amounts)]
    for domain in base:
        for level in levels:
            if level != 1.0:
                scaled = {**amounts, domain: amounts[domain] * level}
                runs.append(Perturbation(f"{domain}-x{level:g}", domain, float(level), scaled))
    return runs


def scale_fits(
    runs: Sequence[Perturbation], objective: pl.DataFrame, tokens: int
) -> dict[str, DomainFit]:
    """Per domain, the fit of the objective to its amount (units of the scale's budget): its
    perturbation runs and the base run, every seed. `objective`: columns run (a Perturbation's
    name), seed and objective."""
    fits = {}
    for domain in runs[0].amounts:
        mine = [r for r in runs if r.domain in (None, domain)]
        rows = objective.filter(pl.col("run").is_in([r.name for r in mine]))
        amount = {r.name: r.amounts[domain] / tokens for r in mine}
        x = np.array([amount[name] for name in rows["run"]])
        fits[domain] = fit_domain(x, rows["objective"].to_numpy())
    return fits


def optimum_table(
    fits: Mapping[str, DomainFit], scale: str, tokens: int, draws: int, seed: int
) -> tuple[pl.DataFrame, np.ndarray]:
    """Per domain: the optimal weight at this scale with its 95% interval (delta method on the
    fits' covariance), the optimal tokens, and the fit's parameters and residual sd; plus
    (draws, K) normal draws of the optimum, for the prediction across scales."""
    names = list(fits)
    best, cov, drawn = optimum_delta([fits[d] for d in names], seed, draws)
    half = Z95 * np.sqrt(np.clip(np.diag(cov), 0.0, None))
    rows = [
        {
            "scale": scale, "tokens": tokens, "domain": d, "weight": float(best[i]),
            "ci_low": float(best[i] - half[i]), "ci_high": float(best[i] + half[i]),
            "optimal_tokens": float(best[i] * tokens),
            **dict(zip(("k", "a", "b", "c"), map(float, fits[d].params), strict=True)),
            "residual_sd": fits[d].residual_sd, "n": fits[d].n,
        }
        for i, d in enumerate(names)
    ]  # fmt: skip
    return pl.DataFrame(rows), drawn


def prediction_table(
    tokens: Sequence[float],
    weights: np.ndarray,
    draws: np.ndarray,
    target: float,
    domains: Sequence[str],
) -> pl.DataFrame:
    """Per rule ("autoscale": the last two scales; "all": least squares over every scale) and
    domain: the predicted optimal weight at the `target` budget and its 95% interval, from the
    optima (S, K) and their draws (draws, S, K) at budgets `tokens` (S,)."""
    rows = []
    for rule in ("autoscale", "all"):
        point = predict(np.asarray(tokens), weights, target, rule)
        low, high = interval(predict(np.asarray(tokens), draws, target, rule))
        rows += [
            {"rule": rule, "tokens": target, "domain": d, "weight": float(point[i]),
             "ci_low": float(low[i]), "ci_high": float(high[i])}
            for i, d in enumerate(domains)
        ]  # fmt: skip
    return pl.DataFrame(rows)
