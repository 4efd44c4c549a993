"""lm-evaluation-harness scores of every cell (study key `harness`) as tidy tables.

`harness`: one row per cell, task and metric (the cell's `harness.json`). `harness_summary`:
per (ratio, schedule, arm, task, metric) the mean over seeds with its 95% t-interval, and the
mean change against the baseline schedule paired by seed, with its 95% t-interval. These are
descriptive: they are not in the verdict family, so their intervals are not corrected for the
number of tasks and metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl

from curriculab.analysis.runs import RunSpec, cell_identity, check_runs, get_field, read_record
from curriculab.analysis.statistics import t_interval

SCHEMA: dict[str, type[pl.DataType]] = {
    "ratio": pl.String,
    "ratio_value": pl.Float64,
    "schedule": pl.String,
    "arm": pl.String,
    "seed": pl.Int64,
    "task": pl.String,
    "metric": pl.String,
    "value": pl.Float64,
    "stderr": pl.Float64,  # the harness's own standard error over documents (null: none given)
    "n_docs": pl.Int64,
}


def collect_harness(runs: Sequence[RunSpec]) -> pl.DataFrame:
    """Every cell's harness.json stacked: one row per cell, task and metric, in cell order."""
    rows = []
    for run in check_runs(runs):
        path = Path(run[-1]) / "harness.json"
        for task, scores in get_field(read_record(path), "tasks", path).items():
            for metric, score in get_field(scores, "metrics", path, f"tasks.{task}.").items():
                rows.append(
                    {
                        **cell_identity(run),
                        "task": task,
                        "metric": metric,
                        "value": score["value"],
                        "stderr": score["stderr"],
                        "n_docs": scores.get("n_docs"),
                    }
                )
    return pl.DataFrame(rows, schema=SCHEMA)


def _interval(values: Sequence[float]) -> tuple[float | None, float | None, float | None]:
    finite = np.array([v for v in values if v is not None], dtype=np.float64)
    if len(finite) == 0:
        return None, None, None
    mean, low, high = t_interval(finite)
    return mean, (None if np.isnan(low) else low), (None if np.isnan(high) else high)


def harness_summary(table: pl.DataFrame, baseline: str) -> pl.DataFrame:
    """Per (ratio, schedule, arm, task, metric): n_seeds, mean and 95% t-interval over seeds;
    `delta_*`: the change against `baseline` at the same ratio, arm and seed (null for the
    baseline itself and where no seed pairs)."""
    keys = ["ratio", "ratio_value", "schedule", "arm", "task", "metric"]
    base = table.filter(pl.col("schedule") == baseline).select(
        "ratio", "arm", "seed", "task", "metric", pl.col("value").alias("base_value")
    )
    paired = table.join(base, on=["ratio", "arm", "seed", "task", "metric"], how="left")
    rows = []
    for key, group in paired.group_by(keys, maintain_order=True):
        mean, low, high = _interval(group["value"].to_list())
        deltas = (group["value"] - group["base_value"]).to_list()
        is_base = key[2] == baseline
        d_mean, d_low, d_high = (None, None, None) if is_base else _interval(deltas)
        rows.append(
            {
                **dict(zip(keys, key, strict=True)),
                "n_seeds": group.height,
                "mean": mean,
                "ci_low": low,
                "ci_high": high,
                "delta_mean": d_mean,
                "delta_ci_low": d_low,
                "delta_ci_high": d_high,
            }
        )
    floats = ["mean", "ci_low", "ci_high", "delta_mean", "delta_ci_low", "delta_ci_high"]
    schema = {
        **{k: SCHEMA[k] for k in keys},
        "n_seeds": pl.Int64,
        **dict.fromkeys(floats, pl.Float64),
    }
    order = ["task", "metric", "ratio_value", "arm", "schedule"]
    return pl.DataFrame(rows, schema=schema).sort(order)
