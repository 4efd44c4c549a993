"""The verdict family and everything the report states of the grid (analysis.statistics holds
the tests; analysis.audit what each comparison differs in).

A verdict names one factor: the order of a fixed set of data. The family is pre-registered
(`analysis.verdict_schedules`) or, by default, the schedule that places D1 (or, with a utility,
what the study values) latest among those with at least one comparison that differs from its
control in order alone; a stated schedule none of whose comparisons does is an error, so that
a study never reports an empty family without saying why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

from curriculab.analysis.learning import CELL, curve_metrics, default_targets
from curriculab.analysis.statistics import (
    PAIRED_METRICS,
    hypothesis_verdicts,
    late_schedules,
    paired_differences,
    summarise_paired,
)
from curriculab.errors import ConfigError

Judged = Mapping[tuple[str, str, str, str], bool]  # (ratio, schedule, control, arm) -> order only


def verdict_family(
    barcodes: pl.DataFrame,
    baseline: str,
    verdict_schedules: Sequence[str] | None = None,
    bias: Mapping[str, float] | None = None,
    judged: Judged | None = None,
) -> list[str]:
    """The schedules of the verdict family: `verdict_schedules` when given (a pre-registered
    choice), else the one schedule that places D1 (or, with `bias`, the utility) latest among
    those the audit (`judged`, None: every schedule) lets a verdict be drawn on."""
    ok = None if judged is None else {s for (_, s, _, _), j in judged.items() if j}
    if verdict_schedules:
        if ok is not None and not set(verdict_schedules) & ok:
            raise ConfigError(
                f"config key 'analysis.verdict_schedules': no comparison of "
                f"{list(verdict_schedules)} with its control differs in order alone (see "
                "results/analysis/comparisons.csv, column differs_in); name a schedule that moves "
                "data without adding or changing it"
            )
        return list(verdict_schedules)
    late = late_schedules(barcodes, baseline, bias=bias)
    return [s for s in late if ok is None or s in ok][:1]


def analyse(
    cells: pl.DataFrame,
    curves: pl.DataFrame,
    barcodes: pl.DataFrame,
    baseline: str,
    target_d1_loss: float | None = None,
    verdict_schedules: Sequence[str] | None = None,
    bias: Mapping[str, float] | None = None,
    metrics: Sequence[str] = (),
    controls: Mapping[tuple[str, str], str] | None = None,
    judged: Judged | None = None,
) -> dict[str, pl.DataFrame]:
    """Everything the report states: cells with learning metrics, paired differences against
    the baseline (per metric and arm, with 95% t-intervals), and the H1/H2 verdicts on the
    cells' `objective` (added as a copy of `d1_test_loss` when absent: the default objective).

    The verdict family: `verdict_family`. Each schedule added to the family costs power (Holm),
    so by default the other late schedules are compared in the exploratory tables only.
    `target_d1_loss` (nats/token), when given, replaces the per-(ratio, arm) default target of
    `default_targets`. metrics: paired columns beside PAIRED_METRICS (test_loss_<domain>).
    controls, judged: each schedule's matched controls and what the audit judged comparable
    (statistics.hypothesis_verdicts)."""
    if "objective" not in cells.columns:
        cells = cells.with_columns(pl.col("d1_test_loss").alias("objective"))
    if target_d1_loss is None:
        targets = default_targets(curves, baseline)
    else:
        pairs = pl.concat([cells.select("ratio", "arm"), curves.select("ratio", "arm")]).unique()
        targets = dict.fromkeys(pairs.iter_rows(), target_d1_loss)
    target_frame = pl.DataFrame(
        [(ratio, arm, loss) for (ratio, arm), loss in targets.items()],
        schema={"ratio": pl.String, "arm": pl.String, "d1_target_loss": pl.Float64},
        orient="row",
    )
    cells = cells.join(curve_metrics(curves, targets), on=CELL, how="left").join(
        target_frame, on=["ratio", "arm"], how="left"
    )
    paired = pl.concat(
        [
            summarise_paired(paired_differences(cells, baseline, m), m)
            for m in (*PAIRED_METRICS, *metrics)
        ]
    )
    late = verdict_family(barcodes, baseline, verdict_schedules, bias, judged)
    verdicts = hypothesis_verdicts(
        cells, late, baseline, column="objective", controls=controls, judged=judged
    )
    return {"cells": cells, "paired": paired, "verdicts": verdicts}
