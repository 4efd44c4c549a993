"""The design loop's result for the report: every point with the prediction made before it ran,
the surface fitted to all of them, and the recommended curriculum (torch-free)."""

from __future__ import annotations

from typing import Any

import polars as pl

from curriculab.analysis.statistics import Z95
from curriculab.design.loop import fresh_measurements, recommendation, surface
from curriculab.design.plan import Design
from curriculab.design.surrogate import Allowed


def summarise(
    design: Design,
    obs: pl.DataFrame,
    rounds: list[dict[str, Any]],
    allowed: Allowed,
    cells: pl.DataFrame,
    baseline: str,
    noise: float | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, Any]]:
    """(points, surface, summary). points: every measured point (round -1: the grid's own
    schedules) with its role and, for surrogate proposals, the predicted mean and 95%
    predictive interval made before it was run; for a point also measured on the fresh seeds
    (the recommendation), that measurement beside the design seeds' (fresh...). summary: the
    recommendation, the fitted kernel, and how often a measured objective fell inside its
    predicted interval. noise: the seed mean's noise variance (loop.seed_noise)."""
    proposed = {p["schedule"]: p for r in rounds for p in r["proposals"]}
    rows = []
    for row in obs.to_dicts():
        p = proposed.get(row["schedule"])
        guess = (p or {}).get("predicted") or {}
        mean, sd = guess.get("mean"), guess.get("sd")
        rows.append({
            **row,
            "role": p["role"] if p else "grid schedule",
            "predicted": mean,
            "predicted_low": None if mean is None else mean - Z95 * sd,
            "predicted_high": None if mean is None else mean + Z95 * sd,
        })  # fmt: skip
    points = pl.DataFrame(rows).join(
        fresh_measurements(cells, design), on="schedule", how="left", maintain_order="left"
    )
    final = proposed[design.names(design.final_round)[0]]
    surf, fit = surface(design, obs, allowed, final["point"], noise)
    checked = points.filter(pl.col("predicted").is_not_null())
    inside = checked.filter(
        (pl.col("objective") >= pl.col("predicted_low"))
        & (pl.col("objective") <= pl.col("predicted_high"))
    )
    summary = {
        "design": design.params(),
        "parameters": list(design.bounds),
        "shown": list(design.bounds)[:2],
        "recommendation": recommendation(design, obs, final, cells, baseline),
        "fit": fit,
        "predictions": {"checked": checked.height, "inside_95": inside.height},
        "best_measured": points.sort("objective").row(0, named=True),
    }
    return points, surf, summary
