"""The report's section on domain utility by removal (analysis.utility): per ratio, arm and
removal, the seed-paired change in every domain's final test loss when one domain is left out
of the window."""

from __future__ import annotations

import polars as pl

from curriculab.report import fmt
from curriculab.report.sections import table

UTILITY_TEXT = """<p>Each row compares a schedule that leaves one domain out of its window with
the reference schedule of the same window that keeps it, at the same D1 ratio, learning-rate arm
and seed. The change is the removal's final test loss minus the reference's on the measured
domain (nats/token), the mean over seeds with its 95% t-interval: positive means the loss rises
without the removed domain, so that domain helps the measured one; the row marked (objective) is
the study's objective: the target domain's loss, or with a stated utility the utility-weighted
loss. Seeds with only one of the two cells are left out. The intervals are per comparison
(unadjusted); the p-values of every row are one Holm family of their own ({family} tests),
separate from the H1/H2 verdicts, and a reading names a direction only where the
Holm-adjusted p-value is below 0.05. A row whose unadjusted interval excludes 0 without that
says so: on its own it is not evidence, given how many changes the table measures.</p>"""


def _interval(change: float | None, low: float | None, high: float | None) -> str:
    """ "+0.050 [+0.046, +0.054]" in nats/token; the interval is left out where it is unknown
    (one seed pair)."""
    if low is None or high is None:
        return fmt.loss(change, signed=True)
    signed = [fmt.loss(value, signed=True) for value in (change, low, high)]
    return f"{signed[0]} [{signed[1]}, {signed[2]}]"


def utility_section(utility: pl.DataFrame) -> str:
    """The caption, then one table row per (ratio, arm, removal, measured domain) in the
    utility table's order (the objective first within each removal)."""
    records = list(utility.iter_rows(named=True))
    rows = utility.with_columns(
        pl.Series(
            "change_text",
            [_interval(r["change"], r["ci_low"], r["ci_high"]) for r in records],
            pl.String,
        ),
        pl.when(pl.col("objective") & (pl.col("measured") == "objective"))
        .then(pl.lit("utility-weighted loss (objective)"))
        .when(pl.col("objective"))
        .then(pl.format("{} (objective)", "measured"))
        .otherwise(pl.col("measured"))
        .alias("measured_text"),
    )
    columns = {
        "ratio": "D1 ratio",
        "arm": "lr arm",
        "removed": "removed domain",
        "schedule": "removal schedule",
        "reference": "reference schedule",
        "measured_text": "measured domain",
        "n_pairs": "seed pairs",
        "reference_loss": "reference loss (nats/token)",
        "change_text": "change in final test loss (95% CI, unadjusted)",
        "p_adjusted": "Holm-adjusted p",
        "verdict": "reading",
    }
    family = int(utility["family_size"].max() or 0) if "family_size" in utility.columns else 0
    formats = {"reference_loss": fmt.loss, "p_adjusted": fmt.p_value}
    return UTILITY_TEXT.format(family=family) + table(rows, columns, formats)
