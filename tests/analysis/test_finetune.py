"""Which data is fine-tuning data (analysis.finetune): on constructed three-domain studies of
known truth, the ranking and calls of concentrate schedules, their numbers against an
independent computation, and the family-wise error of the calls by simulation."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from curriculab.analysis.domains import add_objective, weights_table
from curriculab.analysis.finetune import FINETUNE_SCHEMA, finetune_table
from tests.support.finetune_cells import ARMS, DOMAINS, EFFECTS, RATIOS, k3_cells
from tests.support.simulation import frozen_heap

UTILITY = {"weights": {"a": 0.5, "b": 0.3, "c": 0.2}}
BLOCKS = {"a": 500, "b": 300, "c": 700}
OBJECTIVE_EFFECT = {"concentrate_a": 0.26, "concentrate_b": 0.0, "concentrate_c": -0.16}
SPECS = {
    "shuffled": {"family": "shuffled"},
    **{f"concentrate_{d}": {"family": "concentrate", "domain": d} for d in DOMAINS},
}


def with_objective(cells: pl.DataFrame) -> pl.DataFrame:
    """The cells with the objective of UTILITY, as the aggregate step adds it."""
    weights = weights_table(UTILITY, DOMAINS, "a", list(RATIOS), BLOCKS)
    return add_objective(cells, weights, UTILITY)


def test_the_ranking_and_calls_recover_the_known_effects() -> None:
    table = finetune_table(with_objective(k3_cells()), SPECS, "shuffled", DOMAINS)
    assert table.schema == pl.Schema(FINETUNE_SCHEMA)
    objective = table.filter(pl.col("metric") == "objective")
    assert objective.height == 3 * len(RATIOS) * len(ARMS)
    assert set(objective["family_size"]) == {objective.height}  # one family: these rows
    for (ratio, arm), group in objective.group_by(["ratio", "arm"], maintain_order=True):
        # Rows in rank order: a (most harmed by concentration) first, c (helped) last.
        assert group["domain"].to_list() == ["a", "b", "c"], (ratio, arm)
        assert group["rank"].to_list() == [1, 2, 3]
        assert group["call"].to_list() == ["spread through training", "inconclusive",
                                           "keep for the end"]  # fmt: skip
        for row in group.iter_rows(named=True):
            truth = OBJECTIVE_EFFECT[row["schedule"]]
            assert row["estimate"] == pytest.approx(truth, abs=0.02)
            assert row["ci_low"] < truth < row["ci_high"]
            assert row["n"] == 5 and row["window"] is None
    # The exploratory rows: every concentrate schedule's change in every domain's loss.
    per_domain = table.filter(pl.col("metric") != "objective")
    assert per_domain.height == 3 * len(DOMAINS) * len(RATIOS) * len(ARMS)
    for column in ("p_adjusted", "family_size", "call", "rank"):
        assert per_domain[column].null_count() == per_domain.height, column
    for row in per_domain.iter_rows(named=True):
        truth = EFFECTS[row["schedule"]].get(row["metric"].removeprefix("test_loss_"), 0.0)
        assert row["estimate"] == pytest.approx(truth, abs=0.03)
    # Rows: by ratio and arm; the objective rows (by rank) before the exploratory ones.
    keys = table.select("ratio_value", "arm").rows()
    assert keys == sorted(keys)
    first = table.filter((pl.col("ratio") == "0.1") & (pl.col("arm") == "constant"))
    assert first["metric"].to_list()[:4] == ["objective"] * 3 + ["test_loss_a"]


def test_numbers_match_an_independent_computation() -> None:
    cells = with_objective(k3_cells(seeds=4, noise=0.05))
    table = finetune_table(cells, SPECS, "shuffled", DOMAINS)
    wide = cells.pivot("schedule", index=["ratio", "arm", "seed"], values="objective")
    objective = table.filter(pl.col("metric") == "objective")
    expected_p = []
    for row in objective.iter_rows(named=True):
        group = wide.filter((pl.col("ratio") == row["ratio"]) & (pl.col("arm") == row["arm"]))
        diff = (group[row["schedule"]] - group["shuffled"]).to_numpy()
        result = stats.ttest_1samp(diff, 0.0)
        interval = result.confidence_interval(0.95)
        assert row["estimate"] == pytest.approx(diff.mean())
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((interval.low, interval.high))
        assert row["p_value"] == pytest.approx(result.pvalue, rel=1e-9)
        expected_p.append(result.pvalue)
    # Holm over the objective rows only: the exploratory rows are not in the family.
    adjusted = multipletests(expected_p, alpha=0.05, method="holm")[1]
    assert objective["p_adjusted"].to_numpy() == pytest.approx(adjusted, rel=1e-9)


def test_calls_hold_the_family_wise_error_when_nothing_changes() -> None:
    """No concentrate schedule changes any loss: the chance of any call other than
    inconclusive in a table stays at alpha. The same tables read without Holm (any unadjusted
    p below 0.05) fail that clearly: the check has teeth."""
    rng = np.random.default_rng(7)
    grids = 300
    any_call = any_raw = 0
    null = {schedule: {} for schedule in EFFECTS}
    with frozen_heap():  # statsmodels' Holm collects garbage on every call
        tables = [
            finetune_table(with_objective(k3_cells(null, 3, 0.05, rng)), SPECS, "shuffled", DOMAINS)
            for _ in range(grids)
        ]
    for table in tables:
        objective = table.filter(pl.col("metric") == "objective")
        any_call += int((objective["call"] != "inconclusive").any())
        any_raw += int((objective["p_value"] < 0.05).any())
    error = 3 * math.sqrt(0.05 * 0.95 / grids)
    assert any_call / grids <= 0.05 + error
    assert any_raw / grids > 0.25  # 12 tests at 5% each: about 1 - 0.95**12 = 0.46


def test_every_concentrate_schedule_not_on_a_trunk_is_a_row() -> None:
    effects = {**EFFECTS, "concentrate_a_wide": {"a": 0.1}, "concentrate_b_trunk": {},
               "d1_last": {"a": -0.1}}  # fmt: skip
    specs = {
        **SPECS,
        "concentrate_a_wide": {"family": "concentrate", "domain": "a", "window": 0.4},
        "concentrate_b_trunk": {"family": "concentrate", "domain": "b", "trunk": "t"},
        "d1_last": {"family": "sequential", "order": ["b", "c", "a"]},
        "concentrate_c_unrun": {"family": "concentrate", "domain": "c"},  # no cells
    }
    cells = with_objective(k3_cells(effects))
    objective = finetune_table(cells, specs, "shuffled", DOMAINS).filter(metric="objective")
    chosen = objective.select("schedule", "domain", "window").unique().sort("schedule")
    assert chosen.rows() == [
        ("concentrate_a", "a", None),
        ("concentrate_a_wide", "a", 0.4),  # a domain's second window is a row of its own
        ("concentrate_b", "b", None),
        ("concentrate_c", "c", None),
    ]
    assert set(objective["family_size"]) == {4 * len(RATIOS) * len(ARMS)}
    # Nothing to call: no concentrate schedule, or no baseline to pair with.
    plain = {name: spec for name, spec in specs.items() if spec["family"] != "concentrate"}
    for table in (
        finetune_table(cells, plain, "shuffled", DOMAINS),
        finetune_table(cells.filter(pl.col("schedule") != "shuffled"), specs, "shuffled", DOMAINS),
    ):
        assert table.is_empty() and table.schema == pl.Schema(FINETUNE_SCHEMA)


def test_a_comparison_without_a_spread_is_unranked_and_outside_the_family() -> None:
    cells = with_objective(k3_cells())
    # concentrate_b keeps one seed in one arm: no spread, no test, no rank.
    cells = cells.filter(
        (pl.col("schedule") != "concentrate_b") | (pl.col("arm") == "constant")
        | (pl.col("seed") == 0)
    )  # fmt: skip
    objective = finetune_table(cells, SPECS, "shuffled", DOMAINS).filter(metric="objective")
    lone = objective.filter((pl.col("schedule") == "concentrate_b") & (pl.col("arm") == "wsd"))
    assert (lone["n"] == 1).all() and lone["p_value"].is_nan().all()
    assert lone["rank"].null_count() == lone.height and set(lone["call"]) == {"inconclusive"}
    assert set(objective["family_size"]) == {objective.height - lone.height}
    ranked = objective.filter(pl.col("arm") == "wsd").group_by("ratio").agg(pl.col("rank"))
    assert all(sorted(r for r in ranks if r is not None) == [1, 2] for ranks in ranked["rank"])
