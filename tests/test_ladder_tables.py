"""The ladder's tables (curriculab.ladder.tables) on synthetic cells with known truth: every
scale's optimum and best window come back, both rules predict the target, and the check's
paired tests call a real difference and not a null one. No training."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from curriculab.ladder.plan import CHECK, Ladder, Scale, cell_plan, split_name
from curriculab.ladder.tables import check_table, ladder_fits
from tests.test_ladder import A, B, true_weights

DOMAINS = ["code", "recipes", "wiki"]
BLOCKS = {"code": 1000, "recipes": 2000, "wiki": 1500}
BEST_WINDOW, BEST_FACTOR = 0.15, 2.0
LADDER = Ladder(
    scales=(Scale("s1", 1000, "tiny"), Scale("s2", 2000, "tiny"), Scale("s3", 4000, "tiny")),
    target=Scale("target", 8000, "tiny"),
    base="uniform",
    levels=(1 / 3, 0.5, 1.0, 2.0, 3.0),
    windows=(0.05, 0.1, 0.2, 0.3, 0.4),
    factors=(1.0, 1.5, 2.0, 3.0, 4.0),
    window=0.2,
    factor=2.0,
    seeds=(0, 1, 2),
    ratio="0.3",
    arm="wsd",
    draws=500,
    seed=0,
)


def objective(name: str, rng: np.random.Generator) -> float:
    """The known truth: a power law per domain whose optimum is true_weights(tokens / 1000)
    for a mixture run; a bowl in log window and log factor for an ordering run."""
    scale, run = split_name(name)
    tokens = LADDER.scale(scale).tokens
    spec, run_tokens = cell_plan(LADDER, name, BLOCKS, "recipes", 0.3)
    if run.startswith("order-"):
        window, factor = spec["window"], spec["d1_factor"]
        value = 0.05 * np.log(window / BEST_WINDOW) ** 2 + 0.05 * np.log(factor / BEST_FACTOR) ** 2
        return 3.0 + value + rng.normal(0.0, 0.002)
    w = true_weights(tokens / 1000)
    k = (w + A) ** (B + 1) / B
    shares = spec["phases"][0]["shares"]
    x = np.array([shares[d] * run_tokens / tokens for d in DOMAINS])
    return float(np.sum(k * (x + A) ** (-B)) + rng.normal(0.0, 0.005))


def ladder_cells(rng: np.random.Generator) -> pl.DataFrame:
    names = [n for s in LADDER.scales for n in LADDER.names(s.name, DOMAINS)]
    return pl.DataFrame(
        [{"schedule": n, "seed": seed, "objective": objective(n, rng)}
         for n in names for seed in LADDER.seeds]
    )  # fmt: skip


def test_the_fits_recover_every_scale_and_predict_the_target() -> None:
    fits = ladder_fits(LADDER, ladder_cells(np.random.default_rng(0)), BLOCKS, "recipes", 0.3)
    optima = fits["optima"]
    for scale in LADDER.scales:
        got = optima.filter(pl.col("scale") == scale.name)["weight"].to_numpy()
        assert got == pytest.approx(true_weights(scale.tokens / 1000), abs=0.03), scale.name
    for rule in ("all", "autoscale"):
        got = fits["predictions"].filter(pl.col("rule") == rule)["weight"].to_numpy()
        assert got == pytest.approx(true_weights(8.0), abs=0.05), rule
        assert fits["check"][f"predicted_{rule}"] == pytest.approx(
            dict(zip(DOMAINS, got, strict=True))
        )
    orders = fits["orders"]
    window = orders.filter(pl.col("parameter") == "window")
    factor = orders.filter(pl.col("parameter") == "factor")
    assert window["best"].to_numpy() == pytest.approx([BEST_WINDOW] * 3, rel=0.15)
    assert factor["best"].to_numpy() == pytest.approx([BEST_FACTOR] * 3, rel=0.15)
    assert (window["ci_low"] <= window["best"]).all() and (
        window["best"] <= window["ci_high"]
    ).all()
    assert set(fits["backtest"]["rule"]) == {"all", "autoscale"}
    assert fits["check"]["uniform"] == pytest.approx(dict.fromkeys(DOMAINS, 1 / 3))
    assert set(fits["curves"]["kind"]) == {"mixture", "order"}


def test_the_check_calls_a_real_difference_and_not_a_null_one() -> None:
    rng = np.random.default_rng(1)
    seeds = range(6)
    offsets = {"predicted_all": -0.1, "predicted_autoscale": 0.0, "natural": 0.0,
               "uniform": 0.0, "smallest": 0.0}  # fmt: skip
    rows = [
        {"schedule": f"ladder_target_{m}", "seed": s,
         "objective": 3.0 + offsets[m] + 0.05 * s + rng.normal(0.0, 0.01)}
        for m in CHECK for s in seeds
    ]  # fmt: skip
    means, tests = check_table(pl.DataFrame(rows))
    assert means["mixture"].to_list() == list(CHECK) and (means["seeds"] == 6).all()
    best = tests.filter(pl.col("predicted") == "predicted_all")
    assert (best["verdict"] == "prediction better").all()
    assert best["estimate"].to_numpy() == pytest.approx([-0.1] * 3, abs=0.03)
    null = tests.filter(pl.col("predicted") == "predicted_autoscale")
    assert (null["verdict"] == "no difference shown").all()
    assert (tests["p_holm"] >= tests["p_value"] - 1e-12).all()
