"""The ladder's prediction intervals against a known truth, through the real tables
(curriculab.ladder.tables.ladder_fits), with what the study's data have and a simple simulation
would leave out: every seed shares one initialisation and one D1 subsample across all its cells
at every scale (a seed offset, and a seed's own value of each domain), the base run's cells
enter every domain's fit, and the optimum is log-linear in the budget only up to departures of
its own at every scale (lack of fit). The truth is the optimum of the mean over seeds at the
target, departure included. No training."""

from __future__ import annotations

import copy

import numpy as np
import polars as pl

from curriculab.config import load_study
from curriculab.ladder.plan import base_weights, perturbations, split_name
from curriculab.ladder.tables import ladder_fits
from tests.support.helpers import SCHEMA, TINY_CONFIG

DOMAINS = ["code", "recipes", "wiki"]
BLOCKS = {"code": 20_000, "recipes": 40_000, "wiki": 20_000}  # every cell well within one epoch
A = np.array([0.02, 0.05, 0.01])  # true offsets a_i
B = np.array([0.6, 0.9, 1.2])  # true exponents b_i
ALPHA, BETA = np.array([0.0, 0.2, -0.1]), np.array([0.15, -0.05, -0.1])  # log w* = a + b log B
LAW_SD = 0.2  # sd of every scale's departure from the log-linear law (log weight)
SEED_SD, VALUE_SD, NOISE = 0.02, 0.1, 0.01  # seed offset, seed's value of a domain, cell noise
SCALES, TARGET = (2048, 4096, 8192), 16384
REPEATS = 150


def _ladder():
    config = copy.deepcopy(TINY_CONFIG)
    config["domains"] = {
        d: {"source": {"type": "synthetic", "topic": d, "n_docs": 50}} for d in DOMAINS
    }
    config["target_domain"] = "recipes"
    config["grid"]["schedules"] = {"shuffled": {"family": "shuffled"}}
    config["ladder"] = {
        "scales": [{"tokens": t} for t in SCALES], "target": {"tokens": TARGET},
        "base": "uniform", "seeds": [0, 1], "ratio": 0.3, "draws": 1000,
    }  # fmt: skip
    return load_study(config, SCHEMA).ladder


def _truth(tokens: float, departure: np.ndarray) -> np.ndarray:
    w = np.exp(ALPHA + BETA * np.log(tokens / SCALES[0]) + departure)
    return w / w.sum()


def _cells(ladder, rng: np.random.Generator) -> tuple[pl.DataFrame, np.ndarray]:
    """Every scale's cells and the true optimum at the target. Per scale, k_i is set so that
    the optimum of the mean response is exactly _truth (KKT with lambda = 1); seed j scales
    every k_i by (1 + v_ij) and shifts every cell by u_j, at every scale."""
    departure = rng.normal(0.0, LAW_SD, (len(SCALES) + 1, len(DOMAINS)))
    offset = rng.normal(0.0, SEED_SD, len(ladder.seeds))
    value = 1.0 + rng.normal(0.0, VALUE_SD, (len(ladder.seeds), len(DOMAINS)))
    rows = []
    base = base_weights(ladder, BLOCKS, "recipes", 0.3)
    for s, scale in enumerate(ladder.scales):
        w = _truth(scale.tokens, departure[s])
        k = (w + A) ** (B + 1) / B
        runs = {r.name: r for r in perturbations(base, scale.tokens, ladder.levels)}
        for name in ladder.names(scale.name, DOMAINS):
            run = runs.get(split_name(name)[1])
            for j, seed in enumerate(ladder.seeds):
                if run is None:  # an ordering run: a bowl, unused here
                    y = 3.0 + offset[j]
                else:
                    x = np.array([run.amounts[d] / scale.tokens for d in DOMAINS])
                    y = float(np.sum(k * value[j] * (x + A) ** (-B))) + offset[j]
                rows.append({"schedule": name, "seed": seed,
                             "objective": y + rng.normal(0.0, NOISE)})  # fmt: skip
    return pl.DataFrame(rows), _truth(TARGET, departure[-1])


def test_prediction_intervals_cover_the_truth_with_seed_effects_and_lack_of_fit() -> None:
    """Nominal 95% for both rules over 150 repeats x 3 domains (Monte-Carlo sd about 1 point;
    the bounds allow 4): measured 0.944 (all scales) and 0.967 (AutoScale's rule). Today's
    intervals (every scale's own interval, independent between scales, through the rule, as if
    the law were exact) covered 0.68 and 0.71 here."""
    ladder = _ladder()
    rng = np.random.default_rng(0)
    covered: dict[str, list[bool]] = {"all": [], "autoscale": []}
    for _ in range(REPEATS):
        cells, truth = _cells(ladder, rng)
        predictions = ladder_fits(ladder, cells, BLOCKS, "recipes", 0.3)["predictions"]
        for rule, hits in covered.items():
            mine = predictions.filter(pl.col("rule") == rule).sort("domain")
            assert mine["domain"].to_list() == DOMAINS
            low, high = mine["ci_low"].to_numpy(), mine["ci_high"].to_numpy()
            hits += list((low <= truth) & (truth <= high))
    for rule, hits in covered.items():
        assert 0.90 <= np.mean(hits) <= 0.99, (rule, np.mean(hits))
