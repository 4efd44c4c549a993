"""Which data is fine-tuning data: the effect of concentrating one domain at the end.

A `concentrate` schedule (streams.multi) puts all of one domain's data in the final window of
training and keeps every domain's share of the run, so against the baseline (`shuffled` by
default: every domain spread through training) only *when* that domain is seen changes. The
seed-paired change in the objective (concentrate minus baseline, nats/token, paired within
ratio, learning-rate arm and seed) says how to treat the domain:

- "spread through training": concentrating it significantly raises the objective;
- "keep for the end": concentrating it significantly lowers the objective (fine-tuning data);
- "inconclusive": neither, at the Holm-adjusted level.

The objective rows of the table are one Holm family of their own (separate from the H1/H2 and
per-domain families). Beside them, the change in every domain's own loss is exploratory: 95%
t-intervals and p-values, unadjusted, with no call. Within a (ratio, arm), `rank` orders the
objective rows from the most harmed by concentration (1: spread it most) to the most helped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from curriculab.analysis.signflip import sign_flip_ps, smallest_p
from curriculab.analysis.statistics import (
    NOT_JUDGED,
    h1_summaries,
    holm_verdicts,
    paired_differences,
    t_tests,
)

FINETUNE_SCHEMA: dict[str, type[pl.DataType]] = {
    "domain": pl.String,  # the concentrated domain
    "schedule": pl.String,  # its concentrate schedule
    "window": pl.Float64,  # the final window (fraction of training); null: the domain's own share
    "ratio": pl.String,
    "ratio_value": pl.Float64,
    "arm": pl.String,
    "metric": pl.String,  # "objective" (with a call) or "test_loss_<domain>" (exploratory)
    "estimate": pl.Float64,  # mean paired change, concentrate minus baseline (nats/token)
    "ci_low": pl.Float64,  # 95% t-interval over seeds, unadjusted
    "ci_high": pl.Float64,
    "n": pl.Int64,  # seed pairs
    "p_value": pl.Float64,  # two-sided one-sample t-test, unadjusted
    "p_adjusted": pl.Float64,  # Holm over the objective rows; null on the exploratory rows
    "family_size": pl.Int64,  # tests in that family; null on the exploratory rows
    "p_signflip": pl.Float64,  # exact sign-flip p-value, unadjusted (analysis.signflip)
    "p_signflip_min": pl.Float64,  # its floor with n seeds: 2 / 2^n
    "p_signflip_adjusted": pl.Float64,  # Holm over the objective rows; null elsewhere
    "call": pl.String,  # objective rows: spread through training / keep for the end / inconclusive
    "rank": pl.Int64,  # objective rows, per (ratio, arm): 1 = most harmed by concentration
    "control": pl.String,  # the baseline or the schedule's matched control
    "judged": pl.Boolean,  # the comparison differs in order alone (analysis.audit)
}
CALLS = {
    "contradicted": "spread through training",  # the objective rises when concentrated
    "supported": "keep for the end",  # it falls
    "inconclusive": "inconclusive",
}


def concentrate_schedules(schedules: Mapping[str, Mapping[str, Any]]) -> pl.DataFrame:
    """(schedule, domain, window) of every `concentrate` schedule not on a trunk, by name."""
    rows = [
        {"schedule": name, "domain": spec["domain"], "window": spec.get("window")}
        for name, spec in sorted(schedules.items())
        if spec["family"] == "concentrate" and "trunk" not in spec
    ]
    schema = {"schedule": pl.String, "domain": pl.String, "window": pl.Float64}
    return pl.DataFrame(rows, schema=schema)


def paired_tests(
    cells: pl.DataFrame, names: list[str], baseline: str, metric: str, controls=None, judged=None
) -> pl.DataFrame:
    """Per (schedule, arm, ratio): mean, sd and n of the paired changes in `metric` against
    the control (the baseline or a matched control) and whether the audit judged the
    comparison one of order alone (`judged` None: every one)."""
    differences = paired_differences(cells, baseline, metric, controls).filter(
        pl.col("schedule").is_in(names) & pl.col("difference").is_not_nan()
    )
    tests = h1_summaries(differences).drop("hypothesis").with_columns(metric=pl.lit(metric))
    tests = tests.join(
        differences.select("schedule", "arm", "control").unique(), on=["schedule", "arm"]
    )
    keys = tests.select("ratio", "schedule", "control", "arm").iter_rows()
    ok = [True if judged is None else judged.get(k, False) for k in keys]
    return tests.with_columns(judged=pl.Series(ok, dtype=pl.Boolean))


def _ranks(objective: pl.DataFrame) -> pl.Series:
    """Per (ratio, arm): 1 for the largest rise of the objective; null where untested."""
    tested = pl.col("estimate").is_not_nan() & pl.col("p_value").is_not_nan()
    rank = pl.when(tested).then(pl.col("estimate")).rank("min", descending=True)
    return objective.select(rank.over("ratio", "arm").cast(pl.Int64))["estimate"]


def finetune_table(
    cells: pl.DataFrame,
    schedules: Mapping[str, Mapping[str, Any]],
    baseline: str,
    domains: Sequence[str],
    alpha: float = 0.05,
    controls: Mapping[tuple[str, str], str] | None = None,
    judged: Mapping[tuple[str, str, str, str], bool] | None = None,
) -> pl.DataFrame:
    """The fine-tuning table (FINETUNE_SCHEMA; see the module docstring) of every concentrate
    schedule with cells, against `baseline` (or its matched control), from cells' `objective`
    and test_loss_<domain>. A comparison that differs in more than order (`judged`) makes no
    call ("not judged") and stays out of the Holm family.

    Rows by ratio_value and arm; within them the objective rows by rank, then the exploratory
    rows by schedule and `domains`. Empty (with the columns) when the study has no concentrate
    schedule or no baseline cells to pair with."""
    chosen = concentrate_schedules(schedules).filter(
        pl.col("schedule").is_in(cells["schedule"].unique().to_list())
    )
    if chosen.is_empty():
        return pl.DataFrame(schema=FINETUNE_SCHEMA)
    metrics = ["objective", *(f"test_loss_{d}" for d in domains)]
    names = chosen["schedule"].to_list()
    tests = pl.concat([paired_tests(cells, names, baseline, m, controls, judged) for m in metrics])
    if tests.is_empty():
        return pl.DataFrame(schema=FINETUNE_SCHEMA)
    tests = tests.join(chosen, on="schedule", how="left")
    estimate, n = tests["estimate"].to_numpy(), tests["n"].to_numpy()
    low, high, p_value = t_tests(estimate, tests["sd"].to_numpy(), n)
    tests = tests.with_columns(
        ci_low=low,
        ci_high=high,
        p_value=p_value,
        p_signflip=sign_flip_ps(tests["values"].to_list()),
        p_signflip_min=np.array([smallest_p(int(k)) for k in n], dtype=np.float64),
    )
    objective = tests.filter(pl.col("metric") == "objective")
    ok = objective["judged"].to_numpy()
    p_value = np.where(ok, objective["p_value"].to_numpy(), np.nan)
    holm = holm_verdicts(objective["estimate"].to_numpy(), p_value, alpha)
    flips = np.where(ok, objective["p_signflip"].to_numpy(), np.nan)
    flips_holm = holm_verdicts(objective["estimate"].to_numpy(), flips, alpha)
    calls = [CALLS[v] if j else NOT_JUDGED for v, j in zip(holm["verdict"], ok, strict=True)]
    objective = objective.with_columns(
        p_adjusted=holm["p_adjusted"],
        p_signflip_adjusted=flips_holm["p_adjusted"],
        family_size=pl.lit(holm["family_size"], dtype=pl.Int64),
        call=pl.Series(calls, dtype=pl.String),
    )
    objective = objective.with_columns(rank=_ranks(objective))
    order = {m: i for i, m in enumerate(metrics)}
    return (
        pl.concat([objective, tests.filter(pl.col("metric") != "objective")], how="diagonal")
        .sort(
            "ratio_value",
            "arm",
            pl.col("metric") != "objective",
            "rank",
            "schedule",
            pl.col("metric").replace_strict(order),
            nulls_last=True,
        )
        .select(list(FINETUNE_SCHEMA))
        .cast(FINETUNE_SCHEMA)
    )
