"""The ladder's tables (curriculab.ladder.tables) on synthetic cells with known truth: every
scale's optimum and best window come back, both rules predict the target, and the check's
paired tests call a real difference and not a null one. No training."""

from __future__ import annotations

import dataclasses
import html
import re

import numpy as np
import polars as pl
import pytest

from curriculab.analysis.signflip import sign_flip_p
from curriculab.ladder.plan import CHECK, Ladder, Scale, cell_plan, pool_blocks, split_name
from curriculab.ladder.predict import predict
from curriculab.ladder.tables import check_table, ladder_fits
from curriculab.report.ladder import ladder_section
from curriculab.report.words import D1_WORDS
from tests.support.ladder_truth import A, B, true_weights

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
    seq_len=32,
    max_epochs=1.0,
)


def objective(name: str, rng: np.random.Generator, weights=true_weights) -> float:
    """The known truth: a power law per domain whose optimum is weights(tokens / 1000) for a
    mixture run; a bowl in log window and log factor for an ordering run."""
    scale, run = split_name(name)
    tokens = LADDER.scale(scale).tokens
    spec, run_tokens = cell_plan(LADDER, name, BLOCKS, "recipes", 0.3)
    if run.startswith("order-"):
        window, factor = spec["window"], spec["d1_factor"]
        value = 0.05 * np.log(window / BEST_WINDOW) ** 2 + 0.05 * np.log(factor / BEST_FACTOR) ** 2
        return 3.0 + value + rng.normal(0.0, 0.002)
    w = weights(tokens / 1000)
    k = (w + A) ** (B + 1) / B
    shares = spec["phases"][0]["shares"]
    x = np.array([shares[d] * run_tokens / tokens for d in DOMAINS])
    return float(np.sum(k * (x + A) ** (-B)) + rng.normal(0.0, 0.005))


def ladder_cells(rng: np.random.Generator, weights=true_weights) -> pl.DataFrame:
    names = [n for s in LADDER.scales for n in LADDER.names(s.name, DOMAINS)]
    return pl.DataFrame(
        [{"schedule": n, "seed": seed, "objective": objective(n, rng, weights)}
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
    # Beside each t-test, the exact sign-flip test of the same seed differences.
    wide = pl.DataFrame(rows).pivot("schedule", index="seed", values="objective").sort("seed")
    diff = (wide["ladder_target_predicted_all"] - wide["ladder_target_natural"]).to_numpy()
    row = tests.filter((pl.col("predicted") == "predicted_all") & (pl.col("against") == "natural"))
    assert row["p_signflip"][0] == pytest.approx(sign_flip_p(diff)) == 2 / 2**6
    assert (tests["p_signflip_holm"] >= tests["p_signflip"] - 1e-12).all()


def per_scale(optima: pl.DataFrame, column: str) -> np.ndarray:
    """(S, K) a column of the optima table, scales in order."""
    return np.array([optima.filter(pl.col("scale") == s.name)[column] for s in LADDER.scales])


def test_an_optimum_outside_the_measured_amounts_is_flagged_and_censored() -> None:
    """wiki's true optimum at s1 is 0.05, below the least it was trained on (1/3 of the uniform
    base: 0.11): the table says so, and the all-scales line takes it at 0.11."""
    shifting = {1: [0.55, 0.40, 0.05], 2: [0.45, 0.35, 0.20], 4: [0.40, 0.30, 0.30]}
    cells = ladder_cells(np.random.default_rng(2), lambda b: np.array(shifting[round(b)]))
    fits = ladder_fits(LADDER, cells, BLOCKS, "recipes", 0.3)
    optima = fits["optima"]
    flagged = optima.filter(pl.col("outside").is_not_null())
    assert flagged.select("scale", "domain", "outside").rows() == [("s1", "wiki", "below")]
    assert optima["low"].to_numpy() == pytest.approx(1 / 9, rel=1e-3)
    rows = fits["predictions"].filter(pl.col("rule") == "all")
    assert rows["inputs_outside"].to_list() == [0, 0, 1]
    weights, low, high = (per_scale(optima, column) for column in ("weight", "low", "high"))
    tokens = np.array([s.tokens for s in LADDER.scales], dtype=float)
    censored = predict(tokens, np.clip(weights, low, high), 8000, "all")
    assert rows["weight"].to_numpy() == pytest.approx(censored, rel=1e-9)
    uncensored = predict(tokens, weights, 8000, "all")
    assert np.abs(rows["weight"].to_numpy() - uncensored).max() > 0.01  # the censoring mattered


def test_every_cell_s_epochs_are_reported_and_a_prediction_over_the_cap_is_flagged() -> None:
    """With 2-token blocks the same cells would repeat data: every cell's epochs are in the
    table, and a predicted mixture needing more than max_epochs at the target is flagged (the
    check trains it as predicted)."""
    cells = ladder_cells(np.random.default_rng(0))
    fits = ladder_fits(dataclasses.replace(LADDER, seq_len=2), cells, BLOCKS, "recipes", 0.3)
    epochs = fits["epochs"]
    names = [n for s in (*LADDER.scales, LADDER.target) for n in LADDER.names(s.name, DOMAINS)]
    assert epochs.height == len(names) * len(DOMAINS)
    assert (epochs["over_cap"] == (epochs["epochs"] > 1.0)).all()
    pool = pool_blocks(BLOCKS, "recipes", 0.3)
    s3 = epochs.filter(pl.col("scale") == "s3", pl.col("run") == "recipes-x3", pl.col("domain")
                       == "recipes")["epochs"].item()  # fmt: skip
    assert s3 == pytest.approx(3 * (4000 / 3) / 2 / pool["recipes"], rel=1e-3)  # 1.33
    predictions = fits["predictions"]
    expected = (
        predictions["weight"].to_numpy()
        * 8000
        / 2
        / np.array([pool[d] for d in predictions["domain"]])
    )
    assert predictions["epochs"].to_numpy() == pytest.approx(expected, abs=2 / 750)
    assert (predictions["over_cap"] == (predictions["epochs"] > 1.0)).all()
    assert predictions["over_cap"].any() and not predictions["over_cap"].all()


def test_the_report_section_gives_every_flag_and_every_cell_s_epochs() -> None:
    """The report's ladder section from the same tables: the optimum outside its amounts, the
    censored prediction, the mixture that repeats data and the epochs table with its star."""
    shifting = {1: [0.55, 0.40, 0.05], 2: [0.45, 0.35, 0.20], 4: [0.40, 0.30, 0.30]}
    rng = np.random.default_rng(2)
    cells = ladder_cells(rng, lambda b: np.array(shifting[round(b)]))
    ladder = dataclasses.replace(LADDER, seq_len=2)
    fits = ladder_fits(ladder, cells, BLOCKS, "recipes", 0.3)
    check = pl.DataFrame(
        [{"schedule": f"ladder_target_{m}", "seed": s, "objective": 3.0 + rng.normal(0.0, 0.01)}
         for m in CHECK for s in range(4)]
    )  # fmt: skip
    means, tests = check_table(check)
    summary = {k: v if k == "check" else v.to_dicts() for k, v in fits.items()}
    summary |= {"ladder": ladder.params(), "check_means": means.to_dicts(),
                "check_tests": tests.to_dicts()}  # fmt: skip
    body, charts = ladder_section(summary, D1_WORDS, {"seeds": [0, 1, 2, 3]})
    text = html.unescape(re.sub(r"<[^>]+>", " ", body))
    assert "wiki's optimum at s1" in text and "lies below the amounts it was trained at" in text
    assert "optima outside the levels at 1 of its scales (censored)" in text
    assert "is trained as predicted, repeating data" in text
    over = (
        fits["epochs"]
        .filter(pl.col("over_cap"))
        .with_columns(
            row=pl.when(pl.col("scale") == "target").then(pl.col("run")).otherwise(pl.col("scale"))
        )
    )
    assert over.height and body.count(" *</td>") == over.select("row", "domain").n_unique()
    assert "more than 1 epoch of any domain" in text and "on 2 degrees of freedom" in text
    assert {"chart-ladder-optimum", "chart-ladder-mixture"} <= set(charts)
