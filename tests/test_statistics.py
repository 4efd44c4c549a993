"""Statistics: learning metrics, paired differences, intervals and hypothesis verdicts."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from scipy import stats

from curriculab.analysis.statistics import (
    curve_metrics,
    default_targets,
    end_bias,
    hypothesis_verdicts,
    paired_differences,
    slope_interval,
    summarise_paired,
    t_interval,
    tokens_to_reach,
    verdict,
)

RATIOS = {"0.05": 0.05, "0.15": 0.15, "0.45": 0.45}


def test_t_interval_matches_scipy() -> None:
    values = np.array([0.3, -0.1, 0.45, 0.2])
    mean, low, high = t_interval(values)
    expected = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    assert (low, high) == pytest.approx(expected) and mean == pytest.approx(values.mean())
    assert all(math.isnan(v) for v in t_interval(np.array([1.0]))[1:])


def test_tokens_to_reach_interpolates_and_reports_never() -> None:
    tokens = np.array([0.0, 100.0, 200.0])
    loss = np.array([8.0, 6.0, 4.0])
    assert tokens_to_reach(tokens, loss, 5.0) == pytest.approx(150.0)
    assert tokens_to_reach(tokens, loss, 8.5) == 0.0
    assert tokens_to_reach(tokens, loss, 3.0) is None


def _curves(schedule: str, d1: list[float], d2: list[float], seed: int = 0) -> pl.DataFrame:
    steps = list(range(len(d1)))
    rows = [
        {
            "ratio": "0.15",
            "ratio_value": 0.15,
            "schedule": schedule,
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


def test_curve_metrics_auc_target_and_forgetting() -> None:
    curves = pl.concat(
        [
            _curves("shuffled", [8, 6, 5, 4, 3], [8, 5, 4, 3, 3.5]),
            _curves("flat", [5, 5, 5, 5, 5], [8, 4, 4, 4, 4]),
        ]
    )
    targets = default_targets(curves, "shuffled")
    assert targets == {"0.15": 5.0}  # the baseline's loss at the evaluation half-way through
    metrics = curve_metrics(curves, targets).sort("schedule")
    flat, shuffled = metrics.row(0, named=True), metrics.row(1, named=True)
    assert flat["d1_auc"] == pytest.approx(5.0)  # a constant curve's mean is its value
    expected_auc = np.trapezoid([8, 6, 5, 4, 3], [0, 100, 200, 300, 400]) / 400
    assert shuffled["d1_auc"] == pytest.approx(expected_auc)
    assert shuffled["d1_tokens_to_target"] == pytest.approx(200.0)
    assert flat["d1_tokens_to_target"] == 0.0
    assert shuffled["d2_forgetting"] == pytest.approx(0.5) and flat["d2_forgetting"] == 0.0


def _cells(effect: dict[str, float], noise: float = 0.01, seeds: int = 4) -> pl.DataFrame:
    """Final D1 losses: the baseline at 4.0, d1_last better by effect[ratio] (plus noise)."""
    rng = np.random.default_rng(0)
    rows = []
    for ratio, value in RATIOS.items():
        for seed in range(seeds):
            base = 4.0 + rng.normal(0, 0.2)  # seeds differ a lot; pairing removes it
            rows.append(
                {
                    "ratio": ratio,
                    "ratio_value": value,
                    "schedule": "shuffled",
                    "seed": seed,
                    "d1_test_loss": base,
                }
            )
            rows.append(
                {
                    "ratio": ratio,
                    "ratio_value": value,
                    "schedule": "d1_last",
                    "seed": seed,
                    "d1_test_loss": base - effect[ratio] + rng.normal(0, noise),
                }
            )
    return pl.DataFrame(rows)


def _barcodes() -> pl.DataFrame:
    rows = []
    for schedule, shares in (("shuffled", [0.2] * 10), ("d1_last", [0.0] * 8 + [1.0] * 2)):
        for ratio, value in RATIOS.items():
            rows += [
                {
                    "ratio": ratio,
                    "ratio_value": value,
                    "schedule": schedule,
                    "seed": 0,
                    "bin": i,
                    "progress": i / 10,
                    "target_share": s,
                }
                for i, s in enumerate(shares)
            ]
    return pl.DataFrame(rows)


def test_paired_differences_remove_the_seed_effect() -> None:
    cells = _cells({"0.05": 0.3, "0.15": 0.3, "0.45": 0.3})
    summary = summarise_paired(paired_differences(cells, "shuffled", "d1_test_loss"), "d1")
    assert summary["schedule"].unique().to_list() == ["d1_last"]
    assert summary["mean_difference"].to_numpy() == pytest.approx(-0.3, abs=0.02)
    assert (summary["ci_high"] < 0).all() and (summary["n_seeds"] == 4).all()


def test_end_bias_ranks_late_schedules_higher() -> None:
    bias = end_bias(_barcodes())
    assert bias["shuffled"] == pytest.approx(0.5) and bias["d1_last"] == pytest.approx(0.9)


@pytest.mark.parametrize(
    ("effect", "h1", "h2"),
    [
        ({"0.05": 0.6, "0.15": 0.35, "0.45": 0.1}, "supported", "supported"),
        ({"0.05": -0.1, "0.15": -0.35, "0.45": -0.6}, "contradicted", "supported"),
        ({"0.05": 0.1, "0.15": 0.35, "0.45": 0.6}, "supported", "contradicted"),
        ({"0.05": 0.0, "0.15": 0.0, "0.45": 0.0}, "inconclusive", "inconclusive"),
    ],
)
def test_verdicts_follow_the_intervals(effect, h1: str, h2: str) -> None:
    noise = 0.05 if h1 == "inconclusive" else 0.01
    table = hypothesis_verdicts(_cells(effect, noise), _barcodes(), "shuffled")
    assert set(table["schedule"]) == {"d1_last"}
    h1_rows = table.filter(pl.col("hypothesis") == "H1")
    assert h1_rows.height == 3
    if h1 != "inconclusive":
        assert set(h1_rows["verdict"]) == {h1}
    else:
        assert "inconclusive" in set(h1_rows["verdict"])
    assert table.filter(pl.col("hypothesis") == "H2")["verdict"].item() == h2


def test_verdict_and_slope_edge_cases() -> None:
    assert verdict(-2.0, -0.1) == "supported" and verdict(0.1, 2.0) == "contradicted"
    assert verdict(-1.0, 1.0) == "inconclusive" and verdict(math.nan, 1.0) == "inconclusive"
    x = np.log([0.05, 0.15, 0.45, 0.05])
    slope, low, high = slope_interval(x, 2.0 - 0.5 * x)
    assert slope == pytest.approx(-0.5) and low == pytest.approx(high, abs=1e-6)
    assert all(math.isnan(v) for v in slope_interval(x[:2], x[:2]))
