"""Statistics: learning metrics, paired differences, intervals and hypothesis verdicts.

The verdict procedure's error rates and power are checked by simulation in
test_verdict_simulation.py; here, its parts against independent computations.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from curriculab.analysis.statistics import (
    VERDICT_SCHEMA,
    curve_metrics,
    default_targets,
    end_bias,
    hypothesis_verdicts,
    late_schedules,
    paired_differences,
    summarise_paired,
    t_interval,
    t_tests,
    tokens_to_reach,
)
from curriculab.analysis.verdicts import analyse

RATIOS = {"0.05": 0.05, "0.15": 0.15, "0.45": 0.45}
ARMS = ("constant", "wsd_window")


def test_t_interval_matches_scipy() -> None:
    values = np.array([0.3, -0.1, 0.45, 0.2])
    mean, low, high = t_interval(values)
    expected = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    assert (low, high) == pytest.approx(expected) and mean == pytest.approx(values.mean())
    assert all(math.isnan(v) for v in t_interval(np.array([1.0]))[1:])


def test_t_tests_match_scipy_ttest_1samp() -> None:
    rng = np.random.default_rng(3)
    samples = [rng.normal(0.2, 0.3, n) for n in (2, 3, 3, 5, 8)] + [np.array([0.4])]
    n = np.array([len(s) for s in samples])
    estimate = np.array([s.mean() for s in samples])
    sd = np.array([s.std(ddof=1) if len(s) > 1 else math.nan for s in samples])
    low, high, p_value = t_tests(estimate, sd, n)
    for i, sample in enumerate(samples[:-1]):
        result = stats.ttest_1samp(sample, 0.0)
        interval = result.confidence_interval(0.95)
        assert p_value[i] == pytest.approx(result.pvalue, rel=1e-9)
        assert (low[i], high[i]) == pytest.approx((interval.low, interval.high), rel=1e-9)
    assert math.isnan(p_value[-1]) and math.isnan(low[-1]) and math.isnan(high[-1])


def test_tokens_to_reach_interpolates_and_reports_never() -> None:
    tokens = np.array([0.0, 100.0, 200.0])
    loss = np.array([8.0, 6.0, 4.0])
    assert tokens_to_reach(tokens, loss, 5.0) == pytest.approx(150.0)
    assert tokens_to_reach(tokens, loss, 8.5) == 0.0
    assert tokens_to_reach(tokens, loss, 3.0) is None


def _curves(
    schedule: str,
    d1: list[float],
    d2: list[float],
    arm: str = "constant",
    ratio: str = "0.15",
    seed: int = 0,
) -> pl.DataFrame:
    steps = list(range(len(d1)))
    rows = [
        {
            "ratio": ratio,
            "ratio_value": RATIOS[ratio],
            "schedule": schedule,
            "arm": arm,
            "seed": seed,
            "step": s,
            "tokens_seen": 100 * s,
            "domain": domain,
            "loss": float(value),
            "is_target": domain == "d1",
        }
        for domain, losses in (("d1", d1), ("d2", d2))
        for s, value in zip(steps, losses, strict=True)
    ]
    return pl.DataFrame(rows)


def test_curve_metrics_auc_target_and_forgetting_per_arm() -> None:
    curves = pl.concat(
        [
            _curves("shuffled", [8, 6, 5, 4, 3], [8, 5, 4, 3, 3.5]),
            _curves("flat", [5, 5, 5, 5, 5], [8, 4, 4, 4, 4]),
            # The other arm's baseline is slower: its target must not leak into "constant".
            _curves("shuffled", [8, 7, 6.5, 5, 4], [8, 5, 4, 3, 3], arm="wsd_window"),
            _curves("flat", [6, 6, 6, 6, 6], [8, 4, 4, 4, 4], arm="wsd_window"),
        ]
    )
    targets = default_targets(curves, "shuffled")
    # The baseline's loss at the evaluation half-way through, per (ratio, arm).
    assert targets == {("0.15", "constant"): 5.0, ("0.15", "wsd_window"): 6.5}
    metrics = curve_metrics(curves, targets).sort("arm", "schedule")
    assert metrics["arm"].to_list() == ["constant", "constant", "wsd_window", "wsd_window"]
    flat, shuffled = metrics.row(0, named=True), metrics.row(1, named=True)
    assert flat["d1_auc"] == pytest.approx(5.0)  # a constant curve's mean is its value
    expected_auc = np.trapezoid([8, 6, 5, 4, 3], [0, 100, 200, 300, 400]) / 400
    assert shuffled["d1_auc"] == pytest.approx(expected_auc)
    assert shuffled["d1_tokens_to_target"] == pytest.approx(200.0)
    assert flat["d1_tokens_to_target"] == 0.0
    assert shuffled["d2_forgetting"] == pytest.approx(0.5) and flat["d2_forgetting"] == 0.0
    wsd_flat = metrics.row(2, named=True)
    assert wsd_flat["d1_tokens_to_target"] == 0.0  # 6 <= the wsd target 6.5, not 5.0


def _cells(
    effect: dict[str, float], noise: float = 0.01, seeds: int = 4, arm_gap: float = 1.0
) -> pl.DataFrame:
    """Final D1 losses: the baseline at 4.0 (+ arm_gap in the second arm), d1_last better by
    effect[ratio] (plus noise). Seeds differ a lot; pairing removes it."""
    rng = np.random.default_rng(0)
    rows = []
    for ratio, value in RATIOS.items():
        for seed in range(seeds):
            for a, arm in enumerate(ARMS):
                base = 4.0 + a * arm_gap + rng.normal(0, 0.2)
                late = base - effect[ratio] + rng.normal(0, noise)
                rows += [
                    {
                        "ratio": ratio,
                        "ratio_value": value,
                        "schedule": schedule,
                        "arm": arm,
                        "seed": seed,
                        "d1_test_loss": loss,
                    }
                    for schedule, loss in (("shuffled", base), ("d1_last", late))
                ]
    return pl.DataFrame(rows)


def _barcodes(shapes: dict[str, list[float]] | None = None) -> pl.DataFrame:
    """D1 share per tenth of training; barcodes carry no arm (the data order has none)."""
    shapes = shapes or {"shuffled": [0.2] * 10, "d1_last": [0.0] * 8 + [1.0] * 2}
    rows = [
        {
            "ratio": ratio,
            "ratio_value": value,
            "schedule": schedule,
            "seed": seed,
            "bin": i,
            "progress": i / 10,
            "target_share": s,
        }
        for schedule, shares in shapes.items()
        for ratio, value in RATIOS.items()
        for seed in (0, 1)
        for i, s in enumerate(shares)
    ]
    return pl.DataFrame(rows)


def test_paired_differences_pair_within_arm_and_remove_the_seed_effect() -> None:
    cells = _cells({"0.05": 0.3, "0.15": 0.3, "0.45": 0.3}, arm_gap=1.0)
    differences = paired_differences(cells, "shuffled", "d1_test_loss")
    # One difference per late cell: pairing across arms would double the rows and mix in
    # the 1-nat gap between arms.
    assert differences.height == cells.filter(pl.col("schedule") == "d1_last").height
    assert differences["difference"].to_numpy() == pytest.approx(-0.3, abs=0.05)
    summary = summarise_paired(differences, "d1")
    assert summary["schedule"].unique().to_list() == ["d1_last"]
    assert sorted(summary["arm"].unique().to_list()) == list(ARMS) and summary.height == 6
    assert summary["mean_difference"].to_numpy() == pytest.approx(-0.3, abs=0.02)
    assert (summary["ci_high"] < 0).all() and (summary["n_seeds"] == 4).all()


def test_end_bias_and_late_schedules() -> None:
    barcodes = _barcodes(
        {
            "shuffled": [0.2] * 10,
            "d1_last": [0.0] * 8 + [1.0] * 2,
            "end_window": [0.0] * 5 + [0.4] * 5,
            "nudged": [0.18] * 5 + [0.22] * 5,  # 0.525: later, within the margin
            "d1_first": [1.0] * 2 + [0.0] * 8,
        }
    )
    bias = end_bias(barcodes)
    assert bias["shuffled"] == pytest.approx(0.5) and bias["d1_last"] == pytest.approx(0.9)
    assert bias["end_window"] == pytest.approx(0.75) and bias["nudged"] == pytest.approx(0.525)
    assert late_schedules(barcodes, "shuffled") == ["d1_last", "end_window"]
    assert late_schedules(barcodes, "shuffled", margin=0.0) == ["d1_last", "end_window", "nudged"]
    assert late_schedules(barcodes, "d1_last") == []
    with pytest.raises(ValueError, match="no barcodes"):
        late_schedules(barcodes, "missing")


@pytest.mark.parametrize(
    ("effect", "h1", "h2"),
    [
        ({"0.05": 0.6, "0.15": 0.35, "0.45": 0.1}, "supported", "supported"),
        ({"0.05": -0.1, "0.15": -0.35, "0.45": -0.6}, "contradicted", "supported"),
        ({"0.05": 0.1, "0.15": 0.35, "0.45": 0.6}, "supported", "contradicted"),
        ({"0.05": 0.0, "0.15": 0.0, "0.45": 0.0}, "inconclusive", "inconclusive"),
    ],
)
def test_verdicts_follow_the_evidence(effect: dict[str, float], h1: str, h2: str) -> None:
    noise = 0.05 if h1 == "inconclusive" else 0.01
    table = hypothesis_verdicts(_cells(effect, noise), ["d1_last"], "shuffled")
    assert table.columns == list(VERDICT_SCHEMA) and table.schema == pl.Schema(VERDICT_SCHEMA)
    assert set(table["schedule"]) == {"d1_last"} and set(table["correction"]) == {"holm"}
    assert (table["family_size"] == 8).all()  # 2 arms x (3 H1 + 1 H2): one family
    for arm in ARMS:
        rows = table.filter(pl.col("arm") == arm)
        assert rows["hypothesis"].to_list() == ["H1", "H1", "H1", "H2"]
        assert rows["ratio"].to_list() == ["0.05", "0.15", "0.45", "all"]
        assert set(rows["verdict"][:3]) == {h1} and rows["verdict"][3] == h2
        assert (rows["n"] == 4).all()


def test_verdict_numbers_match_an_independent_computation() -> None:
    cells = _cells({"0.05": 0.3, "0.15": 0.2, "0.45": 0.1}, noise=0.05, seeds=3)
    table = hypothesis_verdicts(cells, ["d1_last"], "shuffled", alpha=0.05)
    wide = cells.pivot("schedule", index=["ratio", "ratio_value", "arm", "seed"])
    wide = wide.with_columns(diff=pl.col("d1_last") - pl.col("shuffled")).sort("seed")
    expected_p = []
    for arm in ARMS:
        for ratio in RATIOS:
            diff = wide.filter((pl.col("arm") == arm) & (pl.col("ratio") == ratio))["diff"]
            expected_p.append(stats.ttest_1samp(diff.to_numpy(), 0.0).pvalue)
        slopes = [
            stats.linregress(np.log(group["ratio_value"]), -group["diff"]).slope
            for _, group in wide.filter(pl.col("arm") == arm).group_by("seed")
        ]
        result = stats.ttest_1samp(slopes, 0.0)
        expected_p.append(result.pvalue)
        h2 = table.filter((pl.col("arm") == arm) & (pl.col("hypothesis") == "H2"))
        assert h2["estimate"].item() == pytest.approx(np.mean(slopes))
        interval = result.confidence_interval(0.95)
        assert (h2["ci_low"].item(), h2["ci_high"].item()) == pytest.approx(
            (interval.low, interval.high)
        )
    assert table["p_value"].to_numpy() == pytest.approx(np.array(expected_p), rel=1e-9)
    adjusted = multipletests(expected_p, alpha=0.05, method="holm")[1]
    assert table["p_adjusted"].to_numpy() == pytest.approx(adjusted, rel=1e-9)


def test_untestable_rows_are_inconclusive_and_outside_the_family() -> None:
    cells = _cells({"0.05": 0.6, "0.15": 0.35, "0.45": 0.1})
    # wsd_window keeps one seed (no spread, no test); constant keeps every seed.
    cells = cells.filter((pl.col("arm") == "constant") | (pl.col("seed") == 0))
    table = hypothesis_verdicts(cells, ["d1_last"], "shuffled")
    untestable = table.filter(pl.col("arm") == "wsd_window")
    assert untestable["p_value"].is_nan().all() and untestable["p_adjusted"].is_nan().all()
    assert set(untestable["verdict"]) == {"inconclusive"} and (untestable["n"] == 1).all()
    assert (table["family_size"] == 4).all()
    assert set(table.filter(pl.col("arm") == "constant")["verdict"]) == {"supported"}
    one_ratio = hypothesis_verdicts(
        cells.filter(pl.col("ratio") == "0.05"), ["d1_last"], "shuffled"
    )
    h2 = one_ratio.filter(pl.col("hypothesis") == "H2")
    assert (h2["n"] == 0).all() and h2["estimate"].is_nan().all()
    assert set(h2["verdict"]) == {"inconclusive"}


def test_no_late_schedule_gives_an_empty_table_with_the_columns() -> None:
    table = hypothesis_verdicts(_cells({r: 0.3 for r in RATIOS}), [], "shuffled")
    assert table.is_empty() and table.schema == pl.Schema(VERDICT_SCHEMA)


def test_analyse_targets_per_ratio_and_arm_and_verdicts_per_arm() -> None:
    rng = np.random.default_rng(1)
    curves, cells = [], []
    for ratio in RATIOS:
        for a, arm in enumerate(ARMS):
            for seed in (0, 1, 2):
                for schedule, shift in (("shuffled", 0.0), ("d1_last", -0.5)):
                    d1 = np.array([8, 6, 5, 4, 3]) + a + shift + rng.normal(0, 0.05)
                    curves.append(_curves(schedule, list(d1), [8, 5, 4, 3, 3], arm, ratio, seed))
                    cells.append(
                        {
                            "ratio": ratio,
                            "ratio_value": RATIOS[ratio],
                            "schedule": schedule,
                            "arm": arm,
                            "seed": seed,
                            "d1_test_loss": float(d1[-1]),
                            "d2_test_loss": 3.0,
                        }
                    )
    curves, cells = pl.concat(curves), pl.DataFrame(cells)
    tables = analyse(cells, curves, _barcodes(), "shuffled")
    assert set(tables) == {"cells", "paired", "verdicts"}
    targets = tables["cells"].group_by("arm").agg(pl.col("d1_target_loss").mean()).sort("arm")
    assert targets["d1_target_loss"].to_numpy() == pytest.approx([5.0, 6.0], abs=0.1)
    assert tables["cells"]["d1_tokens_to_target"].null_count() == 0
    assert set(tables["paired"]["arm"]) == set(ARMS)
    assert set(tables["verdicts"]["arm"]) == set(ARMS)
    fixed = analyse(cells, curves, _barcodes(), "shuffled", target_d1_loss=4.5)
    assert set(fixed["cells"]["d1_target_loss"]) == {4.5}


def test_d2_forgetting_pools_the_other_domains_as_d2_test_loss_does() -> None:
    """Two non-target domains of unequal test size: D2 is their token-weighted pooled loss in
    the curve (d2_forgetting) as in the cells table (aggregate's d2_test_loss)."""
    from curriculab.analysis.aggregate import _d2_mean

    sizes = {"b": 900, "c": 100}
    losses = {"a": [6.0, 5.0, 4.0], "b": [5.0, 4.0, 4.5], "c": [5.0, 6.0, 3.0]}
    curves = pl.DataFrame(
        [{"ratio": "0.15", "ratio_value": 0.15, "schedule": "s", "arm": "wsd", "seed": 0,
          "step": i, "tokens_seen": 100 * i, "domain": d, "loss": v, "is_target": d == "a",
          "n_tokens": sizes.get(d, 50)}
         for d, values in losses.items() for i, v in enumerate(values)]
    )  # fmt: skip
    forgetting = curve_metrics(curves, {("0.15", "wsd"): 5.0})["d2_forgetting"][0]
    pooled = [
        _d2_mean({d: {"loss": losses[d][i], "n_tokens": n} for d, n in sizes.items()}, "a", "loss")
        for i in range(3)
    ]
    assert pooled[-1] == pytest.approx(0.9 * 4.5 + 0.1 * 3.0)
    assert forgetting == pytest.approx(pooled[-1] - min(pooled))  # 4.35 - 4.2 = 0.15
    assert forgetting > 0.1  # an unweighted mean (5, 5, 3.75) would say no forgetting at all
    with pytest.raises(ValueError, match="n_tokens"):
        curve_metrics(curves.drop("n_tokens"), {("0.15", "wsd"): 5.0})
