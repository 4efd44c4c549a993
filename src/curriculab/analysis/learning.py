"""Speed of learning and forgetting, per cell, from its learning curves (test loss during
training): how early the target domain (D1) was learned, and how much the other domains were
forgotten by the end. Descriptive measures of the report's speed table; the verdicts are in
analysis.statistics.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

CELL = ["ratio", "ratio_value", "schedule", "arm", "seed"]  # the identity of a cell (one run)


def curve_metrics(curves: pl.DataFrame, targets: dict[tuple[str, str], float]) -> pl.DataFrame:
    """Per cell: D1 speed of learning and D2 forgetting, from the learning curves.

    - d1_auc: area under the D1 test-loss curve over tokens seen, divided by the tokens seen
      (nats/token; lower means D1 was learned earlier and kept).
    - d1_tokens_to_target: tokens seen when the D1 loss first reaches the target loss of the
      cell's (ratio, arm) (linear interpolation between evaluations; null when never reached).
    - d2_forgetting: final minus best D2 test loss over the run (nats/token, >= 0), where D2
      pools the non-target domains as the cells table's d2_test_loss does: each domain's loss
      weighted by its test-split tokens (`n_tokens`, needed with more than one of them).
    targets: the target D1 loss per (ratio label, arm).
    """
    rows = []
    for key, cell in curves.sort("step").group_by(CELL, maintain_order=True):
        named = dict(zip(CELL, key, strict=True))
        d1 = cell.filter(pl.col("is_target"))
        tokens = d1["tokens_seen"].to_numpy().astype(np.float64)
        loss = d1["loss"].to_numpy()
        d2 = pooled_d2(cell.filter(~pl.col("is_target")))
        target = targets[(named["ratio"], named["arm"])]
        rows.append(
            {
                **named,
                "d1_auc": area_per_token(tokens, loss),
                "d1_tokens_to_target": tokens_to_reach(tokens, loss, target),
                "d2_forgetting": float(d2["loss"][-1] - d2["loss"].min()),
            }
        )
    return pl.DataFrame(rows)


def pooled_d2(curve: pl.DataFrame) -> pl.DataFrame:
    """Per step, the non-target domains' losses of one cell pooled into one D2 loss: weighted
    by each domain's test-split tokens (`n_tokens`), the pooled loss over all their test
    tokens, as analysis.aggregate pools d2_test_loss. One domain: its own loss."""
    if curve["domain"].n_unique() == 1:  # exactly its loss (w x / w may be off by one ulp)
        return curve.select("step", "loss")
    if "n_tokens" not in curve.columns:
        raise ValueError("curves: pooling several non-target domains needs column 'n_tokens'")
    weight = pl.col("n_tokens").cast(pl.Float64)
    return curve.group_by("step", maintain_order=True).agg(
        ((pl.col("loss") * weight).sum() / weight.sum()).alias("loss")
    )


def area_per_token(tokens: np.ndarray, loss: np.ndarray) -> float:
    """Area under a learning curve over tokens seen, divided by the tokens seen (nats/token);
    NaN for a curve that never left token 0."""
    return float(np.trapezoid(loss, tokens) / tokens[-1]) if tokens[-1] else math.nan


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


def default_targets(curves: pl.DataFrame, baseline: str) -> dict[tuple[str, str], float]:
    """Target D1 loss per (ratio, arm): the baseline's mean D1 loss (over seeds) at the
    evaluation nearest half of training, in that arm. So the baseline reaches it about half-way
    by construction, and a schedule that learns D1 faster reaches it sooner (stated in the
    report). Per arm, because the learning-rate schedule alone moves the loss at mid-training."""
    d1 = curves.filter(pl.col("is_target") & (pl.col("schedule") == baseline))
    targets = {}
    for (ratio, arm), group in d1.sort(["ratio", "arm", "seed", "step"]).group_by(
        ["ratio", "arm"], maintain_order=True
    ):
        steps = group["step"].unique().sort().to_numpy()
        half = steps[np.argmin(np.abs(steps - steps.max() / 2))]
        targets[(ratio, arm)] = float(group.filter(pl.col("step") == half)["loss"].mean())
    return targets
