"""Per-cell learning metrics, paired comparisons against the baseline, and H1/H2 verdicts.

Design: a seed fixes the model initialisation and the D1 subsample, so schedules are compared
within a seed (paired differences), then summarised over seeds with a t-interval. With the
handful of seeds a grid affords, a t-interval is the honest choice: a bootstrap over three
values cannot produce a wider interval than the data's own range, and undercovers.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
from scipy import stats

CONFIDENCE = 0.95
CELL = ["ratio", "ratio_value", "schedule", "seed"]


def t_quantile(n_seeds: pl.Expr, confidence: float = CONFIDENCE) -> pl.Expr:
    """The two-sided t quantile for `n_seeds` values (null below two), as a polars expression."""
    return n_seeds.map_elements(
        lambda n: float(stats.t.ppf(0.5 + confidence / 2, n - 1)) if n > 1 else None,
        return_dtype=pl.Float64,
    )


def t_interval(values: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(mean, low, high) of a t-interval; low and high are NaN with fewer than two values."""
    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean()) if len(values) else math.nan
    if len(values) < 2:
        return mean, math.nan, math.nan
    half = stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * values.std(ddof=1)
    half /= math.sqrt(len(values))
    return mean, mean - half, mean + half


def curve_metrics(curves: pl.DataFrame, targets: dict[str, float]) -> pl.DataFrame:
    """Per cell: D1 speed of learning and D2 forgetting, from the learning curves.

    - d1_auc: area under the D1 test-loss curve over tokens seen, divided by the tokens seen
      (nats/token; lower means D1 was learned earlier and kept).
    - d1_tokens_to_target: tokens seen when the D1 loss first reaches the ratio's target loss
      (linear interpolation between evaluations; null when never reached).
    - d2_forgetting: final minus best D2 test loss over the run (nats/token, >= 0).
    targets: the target D1 loss per ratio label.
    """
    rows = []
    for key, cell in curves.sort("step").group_by(CELL, maintain_order=True):
        d1 = cell.filter(pl.col("is_target"))
        tokens = d1["tokens_seen"].to_numpy().astype(np.float64)
        loss = d1["loss"].to_numpy()
        d2 = (
            cell.filter(~pl.col("is_target"))
            .group_by("step", maintain_order=True)
            .agg(pl.col("loss").mean())
        )
        rows.append(
            {
                **dict(zip(CELL, key, strict=True)),
                "d1_auc": float(np.trapezoid(loss, tokens) / tokens[-1])
                if tokens[-1]
                else math.nan,
                "d1_tokens_to_target": tokens_to_reach(tokens, loss, targets[key[0]]),
                "d2_forgetting": float(d2["loss"][-1] - d2["loss"].min()),
            }
        )
    return pl.DataFrame(rows)


def tokens_to_reach(tokens: np.ndarray, loss: np.ndarray, target: float) -> float | None:
    """First tokens-seen at which `loss` falls to `target` (interpolated), or None."""
    below = np.flatnonzero(loss <= target)
    if len(below) == 0:
        return None
    i = int(below[0])
    if i == 0:
        return float(tokens[0])
    frac = (loss[i - 1] - target) / (loss[i - 1] - loss[i])
    return float(tokens[i - 1] + frac * (tokens[i] - tokens[i - 1]))


def default_targets(curves: pl.DataFrame, baseline: str) -> dict[str, float]:
    """Target D1 loss per ratio: the baseline's mean D1 loss at the evaluation nearest half of
    training. So the baseline reaches it about half-way by construction, and a schedule that
    learns D1 faster reaches it sooner (stated in the report)."""
    d1 = curves.filter(pl.col("is_target") & (pl.col("schedule") == baseline))
    targets = {}
    for (ratio,), group in d1.group_by(["ratio"]):
        steps = group["step"].unique().sort().to_numpy()
        half = steps[np.argmin(np.abs(steps - steps.max() / 2))]
        targets[ratio] = float(group.filter(pl.col("step") == half)["loss"].mean())
    return targets


def paired_differences(cells: pl.DataFrame, baseline: str, column: str) -> pl.DataFrame:
    """Per (ratio, schedule, seed): `column` minus the baseline's, same ratio and seed."""
    base = cells.filter(pl.col("schedule") == baseline).select(
        "ratio", "seed", pl.col(column).alias("baseline_value")
    )
    return (
        cells.filter(pl.col("schedule") != baseline)
        .join(base, on=["ratio", "seed"], how="inner")
        .select(*CELL, (pl.col(column) - pl.col("baseline_value")).alias("difference"))
    )


def summarise_paired(differences: pl.DataFrame, metric: str) -> pl.DataFrame:
    """Per (ratio, schedule): n, mean paired difference and its 95% t-interval."""
    rows = []
    for (ratio, ratio_value, schedule), group in differences.group_by(
        ["ratio", "ratio_value", "schedule"]
    ):
        mean, low, high = t_interval(group["difference"].to_numpy())
        rows.append(
            {
                "ratio": ratio,
                "ratio_value": ratio_value,
                "schedule": schedule,
                "metric": metric,
                "n_seeds": group.height,
                "mean_difference": mean,
                "ci_low": low,
                "ci_high": high,
            }
        )
    return pl.DataFrame(rows).sort("ratio_value", "schedule")


def verdict(low: float, high: float) -> str:
    """'supported' when the whole interval says "lower is better" (below 0), 'contradicted'
    when it is above 0, 'inconclusive' when it straddles 0 or cannot be computed."""
    if math.isnan(low) or math.isnan(high):
        return "inconclusive"
    if high < 0:
        return "supported"
    if low > 0:
        return "contradicted"
    return "inconclusive"


def slope_interval(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """OLS slope of y on x with its 95% t-interval (NaN bounds with fewer than 3 points or a
    single x value)."""
    if len(x) < 3 or np.ptp(x) == 0:
        return math.nan, math.nan, math.nan
    fit = stats.linregress(x, y)
    half = stats.t.ppf(0.5 + CONFIDENCE / 2, len(x) - 2) * fit.stderr
    return float(fit.slope), float(fit.slope - half), float(fit.slope + half)


def end_bias(barcodes: pl.DataFrame) -> dict[str, float]:
    """Per schedule: where D1 sits on average, as a fraction of training (0.5 = spread evenly,
    1 = at the very end), from the barcodes of every cell."""
    centre = (
        barcodes.with_columns(
            (pl.col("progress") + 0.5 / (pl.col("bin").max().over(CELL) + 1)).alias("mid")
        )
        .group_by(CELL)
        .agg(
            ((pl.col("mid") * pl.col("target_share")).sum() / pl.col("target_share").sum()).alias(
                "centre"
            )
        )
        .group_by("schedule")
        .agg(pl.col("centre").mean())
    )
    return dict(zip(centre["schedule"], centre["centre"], strict=True))


def hypothesis_verdicts(cells: pl.DataFrame, barcodes: pl.DataFrame, baseline: str) -> pl.DataFrame:
    """H1 per ratio and H2 over ratios, for the most end-biased schedule against the baseline.

    H1: its final D1 test loss is lower than the baseline's (paired difference CI below 0).
    H2: its benefit (baseline minus schedule, nats/token) shrinks as D1 grows: the slope of the
        benefit against ln(ratio) has a CI below 0.
    """
    bias = {k: v for k, v in end_bias(barcodes).items() if k != baseline}
    if not bias:
        return pl.DataFrame()
    late = max(bias, key=bias.get)
    differences = paired_differences(cells, baseline, "d1_test_loss")
    late_diffs = differences.filter(pl.col("schedule") == late)
    rows = []
    for row in summarise_paired(late_diffs, "d1_test_loss").iter_rows(named=True):
        rows.append(
            {
                "hypothesis": "H1",
                "ratio": row["ratio"],
                "schedule": late,
                "estimate": row["mean_difference"],
                "ci_low": row["ci_low"],
                "ci_high": row["ci_high"],
                "n": row["n_seeds"],
                "verdict": verdict(row["ci_low"], row["ci_high"]),
            }
        )
    slope, low, high = slope_interval(
        np.log(late_diffs["ratio_value"].to_numpy()),
        -late_diffs["difference"].to_numpy(),
    )
    rows.append(
        {
            "hypothesis": "H2",
            "ratio": "all",
            "schedule": late,
            "estimate": slope,
            "ci_low": low,
            "ci_high": high,
            "n": late_diffs.height,
            "verdict": verdict(low, high),
        }
    )
    return pl.DataFrame(rows)


PAIRED_METRICS = ("d1_test_loss", "d2_test_loss", "d1_auc")


def analyse(
    cells: pl.DataFrame,
    curves: pl.DataFrame,
    barcodes: pl.DataFrame,
    baseline: str,
    target_d1_loss: float | None = None,
) -> dict[str, pl.DataFrame]:
    """Everything the report states: cells with learning metrics, paired differences against
    the baseline (per metric, with 95% t-intervals), and the H1/H2 verdicts."""
    if target_d1_loss is None:
        targets = default_targets(curves, baseline)
    else:
        targets = dict.fromkeys(cells["ratio"].unique().to_list(), target_d1_loss)
    cells = cells.join(curve_metrics(curves, targets), on=CELL, how="left")
    cells = cells.with_columns(pl.col("ratio").replace_strict(targets).alias("d1_target_loss"))
    paired = pl.concat(
        [summarise_paired(paired_differences(cells, baseline, m), m) for m in PAIRED_METRICS]
    )
    return {
        "cells": cells,
        "paired": paired,
        "verdicts": hypothesis_verdicts(cells, barcodes, baseline),
    }
