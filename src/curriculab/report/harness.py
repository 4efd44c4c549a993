"""The report's section on lm-evaluation-harness scores (study key `harness`): one table per
task and metric, each schedule beside the baseline, paired by seed."""

from __future__ import annotations

import html

import polars as pl

from curriculab.report import fmt
from curriculab.report.sections import table


def _interval(mean: float | None, low: float | None, high: float | None, signed: bool) -> str:
    """ "mean [low, high]"; the interval is left out where it is unknown (one seed)."""
    if mean is None or low is None or high is None:
        return fmt.score(mean, signed)
    return f"{fmt.score(mean, signed)} [{fmt.score(low, signed)}, {fmt.score(high, signed)}]"


def harness_section(summary: pl.DataFrame, baseline: str) -> str:
    """Per task and metric: mean over seeds (95% t-interval) and the change against `baseline`
    at the same ratio, arm and seed (95% t-interval), for every ratio, arm and schedule."""
    parts = [
        "<p>Scores of every cell's saved model by lm-evaluation-harness (docs/stages/harness.md). "
        "<code>curriculab_heldout_&lt;domain&gt;</code> is the perplexity of that domain's "
        "held-out documents, each scored whole: bits per byte and perplexities, lower is better. "
        f"The change is against <code>{html.escape(baseline)}</code> at the same ratio, arm and "
        "seed. Descriptive: these intervals are per comparison, not corrected for the number of "
        "tasks and metrics, and not part of the verdicts.</p>"
    ]
    for (task, metric), group in summary.group_by(["task", "metric"], maintain_order=True):
        records = list(group.iter_rows(named=True))
        rows = group.with_columns(
            pl.Series("score", [_interval(r["mean"], r["ci_low"], r["ci_high"], False)
                                for r in records], pl.String),
            pl.Series("change", ["baseline" if r["delta_mean"] is None else _interval(
                r["delta_mean"], r["delta_ci_low"], r["delta_ci_high"], True) for r in records],
                pl.String),
        )  # fmt: skip
        columns = {
            "ratio": "D1 ratio",
            "arm": "arm",
            "schedule": "schedule",
            "n_seeds": "seeds",
            "score": f"{metric} (95% CI)",
            "change": f"change vs {baseline} (95% CI)",
        }
        parts.append(f"<h3>{html.escape(task)}: {html.escape(metric)}</h3>")
        parts.append(table(rows, columns))
    return "\n".join(parts)
