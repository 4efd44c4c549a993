"""Domain utility by removal: what each domain in a window is worth, measured by leaving it out.

A removal schedule trains the same window as its reference schedule without one named domain
("Does your data spark joy?", arXiv 2406.03476). The change in a domain's final test loss
(removal minus reference, nats/token) is the removed domain's utility for it: positive means
the loss rises without the domain, so the domain was useful. Changes are paired by seed (the
two cells share the seed's data subsample and initial weights, so the seed's own luck cancels)
and summarised with a 95% t-interval over seeds (unadjusted) and a two-sided t-test whose
p-values are Holm-adjusted over the whole table: one family of its own, separate from the
H1/H2 verdicts, so that a reading names a direction only where the change survives the number
of removals, domains, ratios and arms compared. Where the unadjusted interval excludes 0 but
the adjusted p-value does not fall below 0.05, the reading says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl

from curriculab.analysis.statistics import holm_verdicts, t_interval, t_tests

UTILITY_SCHEMA: dict[str, type[pl.DataType]] = {
    "ratio": pl.String,
    "ratio_value": pl.Float64,
    "arm": pl.String,
    "schedule": pl.String,  # the removal schedule
    "reference": pl.String,  # the schedule of the same window that keeps the domain
    "removed": pl.String,  # the domain left out of the window
    "measured": pl.String,  # the domain whose final test loss changes
    "objective": pl.Boolean,  # measured is the target domain: the study's objective
    "n_pairs": pl.Int64,  # seeds with both cells and finite losses
    "reference_loss": pl.Float64,  # mean final test loss of the reference over those seeds
    "change": pl.Float64,  # mean of (removal - reference) over those seeds, nats/token
    "ci_low": pl.Float64,  # 95% t-interval of the mean change (unadjusted); null below 2 pairs
    "ci_high": pl.Float64,
    "p_value": pl.Float64,  # two-sided one-sample t-test of the change, unadjusted
    "p_adjusted": pl.Float64,  # Holm over every row of the table with a p-value
    "family_size": pl.Int64,  # the rows in that family
    "verdict": pl.String,  # in words; a direction only where the adjusted p is below alpha
}
ALPHA = 0.05
PAIR = ["ratio", "ratio_value", "arm", "seed"]


def _check(
    cells: pl.DataFrame, removals: Mapping[str, Mapping[str, str]], domains: Sequence[str]
) -> None:
    """Refuse a removal whose domain, schedules or loss columns the cells table lacks."""
    schedules = set(cells["schedule"].unique().to_list())
    for name, removal in removals.items():
        if removal["domain"] not in domains:
            raise ValueError(f"removal {name!r}: domain {removal['domain']!r} is not a domain")
        for schedule in (name, removal["reference"]):
            if schedule not in schedules:
                raise ValueError(f"removal {name!r}: schedule {schedule!r} has no cells")
    missing = [d for d in domains if f"test_loss_{d}" not in cells.columns]
    if missing:
        raise ValueError(f"utility_table: cells have no test_loss_ column for {missing}")


def _pairs(cells: pl.DataFrame, schedule: str, reference: str, columns: list[str]) -> pl.DataFrame:
    """The removal's cells joined to the reference's of the same ratio, arm and seed; a seed
    with only one of the two has no pair and is dropped (inner join)."""
    removed = cells.filter(pl.col("schedule") == schedule).select(*PAIR, *columns)
    kept = cells.filter(pl.col("schedule") == reference).select(*PAIR, *columns)
    return removed.join(kept, on=PAIR, how="inner", suffix="_reference").sort(PAIR)


def _verdict(row: dict, adjusted: float) -> str:
    """What the test says, in words: a direction only where the Holm-adjusted p-value is below
    ALPHA; where only the unadjusted interval excludes 0, that is said, not a direction."""
    if row["ci_low"] is None or row["ci_high"] is None:
        return "too few seeds for an interval"
    measured, removed = row["measured"], row["removed"]
    loss = "the objective" if measured == "objective" else f"{measured}'s loss"
    if adjusted < ALPHA:
        way = "raises" if row["change"] > 0 else "lowers"
        return f"removing {removed} {way} {loss}"
    if row["ci_low"] > 0 or row["ci_high"] < 0:
        return "no change after Holm's correction (the unadjusted 95% interval excludes 0)"
    return "no detectable change"


def _change(group: pl.DataFrame, column: str) -> dict[str, float | int | None]:
    """n_pairs, reference_loss, change and its interval for one measured loss column; pairs
    with a non-finite loss (a diverged run) are left out, so n_pairs says how many remain."""
    removed = group[column].to_numpy()
    kept = group[f"{column}_reference"].to_numpy()
    finite = np.isfinite(removed) & np.isfinite(kept)
    differences = removed[finite] - kept[finite]
    change, low, high = t_interval(differences)
    known = not np.isnan(low)
    n = len(differences)
    sd = differences.std(ddof=1) if n > 1 else np.nan
    p = t_tests(np.array([change]), np.array([sd]), np.array([n]))[2][0] if n > 1 else np.nan
    return {
        "n_pairs": int(finite.sum()),
        "reference_loss": float(kept[finite].mean()) if finite.any() else None,
        "change": None if np.isnan(change) else change,
        "ci_low": low if known else None,
        "ci_high": high if known else None,
        "p_value": None if np.isnan(p) else float(p),
    }


def utility_table(
    cells: pl.DataFrame,
    removals: Mapping[str, Mapping[str, str]],
    domains: Sequence[str],
    target: str,
    utility: Mapping[str, object] | None = None,
) -> pl.DataFrame:
    """One row per (ratio, arm, removal schedule, measured domain): the seed-paired change in
    that domain's final test loss (`test_loss_<domain>`, nats/token) when `removals[schedule]
    ["domain"]` is left out of the window, against `removals[schedule]["reference"]`.

    Every domain in `domains` is measured; the target's row (objective = True) comes first,
    then the others in `domains` order; rows sorted by ratio_value, arm, schedule. Pairs are by
    seed only: a seed present in one of the two schedules is dropped, never matched to another
    seed. Positive change = the loss rises without the domain = the domain was useful. An empty
    `removals` gives an empty table with the columns of UTILITY_SCHEMA. With a stated
    `utility` the objective is the utility-weighted loss, not the target's: its row (measured
    "objective", from the cells' `objective` column) comes first and is the one flagged.
    """
    _check(cells, removals, domains)
    measured = sorted(domains, key=lambda d: (d != target, list(domains).index(d)))
    column = {d: f"test_loss_{d}" for d in measured}
    if utility is not None:
        measured, column = ["objective", *measured], {"objective": "objective", **column}
        target = "objective"
    columns = list(column.values())
    rows = []
    for schedule in sorted(removals):
        removed, reference = removals[schedule]["domain"], removals[schedule]["reference"]
        pairs = _pairs(cells, schedule, reference, columns)
        for key, group in pairs.group_by(["ratio", "ratio_value", "arm"], maintain_order=True):
            for domain in measured:
                change = _change(group, column[domain])
                rows.append(
                    {
                        **dict(zip(("ratio", "ratio_value", "arm"), key, strict=True)),
                        "schedule": schedule,
                        "reference": reference,
                        "removed": removed,
                        "measured": domain,
                        "objective": domain == target,
                        **change,
                    }
                )
    p_values = np.array([np.nan if r["p_value"] is None else r["p_value"] for r in rows])
    changes = np.array([np.nan if r["change"] is None else r["change"] for r in rows])
    holm = holm_verdicts(changes, p_values, ALPHA)  # the one Holm of every family
    for row, p in zip(rows, holm["p_adjusted"], strict=True):
        row["p_adjusted"] = None if np.isnan(p) else float(p)
        row["family_size"] = holm["family_size"]
        row["verdict"] = _verdict(row, p)
    frame = pl.DataFrame(rows, schema=UTILITY_SCHEMA)
    return frame.sort("ratio_value", "arm", "schedule", maintain_order=True)
