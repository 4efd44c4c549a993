"""The report's "Fine-tuning data" section (analysis.finetune): per ratio and learning-rate arm,
the domains ranked from "must be spread through training" to "can be kept for the end", by the
change in the objective when all of a domain's data is concentrated at the end of training."""

from __future__ import annotations

import html
from typing import Any

import polars as pl

from curriculab.report import fmt
from curriculab.report.sections import table
from curriculab.report.words import Words, audit_note, is_judged, no_verdict, sign_flip_note

FINETUNE_TEXT = """Each concentrate schedule puts all of one domain's data in the final window
of training and keeps every domain's share of the run, so against {baseline} (every domain
spread through training), or its matched control where the arm's cooldown follows the window
({baseline}'s order under the concentrate schedule's learning-rate curve), only when that domain
is seen changes. The change in the objective (concentrate minus control, nats/token) is paired
by seed, with its 95% t-interval. Calls:
<i>spread through training</i> where concentrating the domain significantly raises the objective,
<i>keep for the end</i> where it significantly lowers it (fine-tuning data), <i>inconclusive</i>
otherwise; no call where the comparison differs in more than order (the comparability audit).
Significance is Holm-adjusted over the {family} objective tests of this section, a
family of its own (separate from the verdicts above). Rank 1 is the domain whose concentration
raises the objective most. The changes in each domain's own loss, in the last table, are
exploratory: unadjusted."""


def _window(window: float | None) -> str:
    """Where a concentrate schedule puts the domain: its `window`, or (null) a final window as
    long as the domain's share of the run."""
    if window is None:
        return "a final window as long as its share of the run"
    return f"the final {fmt.percent(window)} of training"


def _short_window(window: float | None) -> str:
    """The window in a table cell: its share of the run (null) or a fraction of training."""
    return "its share of the run" if window is None else fmt.percent(window)


def _interval(row: dict[str, Any]) -> str:
    """ "+0.050 [+0.046, +0.054]" (nats/token); the estimate alone without an interval."""
    if row["ci_low"] is None or row["ci_high"] is None:
        return fmt.loss(row["estimate"], signed=True)
    signed = [fmt.loss(row[key], signed=True) for key in ("estimate", "ci_low", "ci_high")]
    return f"{signed[0]} [{signed[1]}, {signed[2]}]"


def _sentence(row: dict[str, Any], baseline: str) -> str:
    """One domain's line: what concentrating it does to the objective, the call, and the
    comparison's audit line; no call where the comparison differs in more than order."""
    call = {
        "spread through training": f"spread {row['domain']} through training",
        "keep for the end": f"{row['domain']} can be kept for the end (fine-tuning data)",
    }.get(row["call"], "inconclusive: no call either way")
    tested = f"Holm-adjusted p = {fmt.p_value(row['p_adjusted'])}; {sign_flip_note(row)}"
    if not is_judged(row):
        call, tested = no_verdict(row).replace("verdict", "call", 1), "outside the Holm family"
    return (
        f"{row['rank'] or '–'}. {row['domain']} ({row['schedule']}: all of it in "
        f"{_window(row['window'])}): concentrating it changes the objective by "
        f"{fmt.loss(row['estimate'], signed=True)} nats/token (95% CI "
        f"{fmt.loss(row['ci_low'], signed=True)} to {fmt.loss(row['ci_high'], signed=True)}, "
        f"{row['n']} seeds; {tested}; {audit_note(row, baseline)}): {call}."
    )


def _group(group: pl.DataFrame, heading: str, baseline: str) -> str:
    """One (ratio, arm): the ranked sentences, then the order in one line (of the domains
    with a call or an inconclusive test; those without a call are named apart)."""
    rows = list(group.iter_rows(named=True))
    ranked = ", ".join(r["domain"] for r in rows if is_judged(r))
    unsure = [r["domain"] for r in rows if r["call"] == "inconclusive"]
    order = f"From must be spread to can be kept for the end: {ranked or 'none'}."
    if unsure:
        order += f" Inconclusive: {', '.join(unsure)}."
    uncalled = [r["domain"] for r in rows if not is_judged(r)]
    if uncalled:
        order += f" No call (not a comparison of order alone): {', '.join(uncalled)}."
    items = "".join(f"<li>{html.escape(_sentence(r, baseline))}</li>" for r in rows)
    return f"<h3>{html.escape(heading)}</h3><ul>{items}</ul><p>{html.escape(order)}</p>"


def finetune_section(finetune: pl.DataFrame, baseline: str, words: Words) -> str:
    """How to read the section, then per (ratio, arm) the domains in rank order in sentences,
    and the objective and per-domain tables."""
    objective = finetune.filter(pl.col("metric") == "objective")
    family = int(objective["family_size"].max() or 0)
    text = FINETUNE_TEXT.format(baseline=html.escape(baseline), family=family)
    parts = [f"<p>{' '.join(text.split())}</p>"]
    for (ratio, arm), group in objective.group_by(["ratio", "arm"], maintain_order=True):
        parts.append(_group(group, f"{words.ratio} {ratio} · lr {arm}", baseline))
    records = list(finetune.iter_rows(named=True))
    rows = finetune.with_columns(
        pl.Series("change", [_interval(r) for r in records], pl.String),
        pl.Series("window_text", [_short_window(r["window"]) for r in records], pl.String),
        pl.col("metric").str.strip_prefix("test_loss_").alias("measured"),
        pl.Series("audit", [audit_note(r, baseline) for r in records], pl.String),
        pl.Series(
            "call_text",
            [r["call"] if is_judged(r) else no_verdict(r) for r in records],
            pl.String,
        ),
    )
    shared = {"ratio": words.ratio, "arm": "lr arm"}
    ranked = {
        **shared,
        "rank": "rank",
        "domain": "concentrated domain",
        "schedule": "schedule",
        "window_text": "final window",
        "n": "seeds",
        "change": "change in the objective (95% CI)",
        "p_adjusted": "Holm-adjusted p",
        "p_signflip_adjusted": "sign-flip p (Holm)",
        "audit": "comparability audit",
        "call_text": "call",
    }
    parts.append("<h3>The calls</h3>")
    parts.append(
        table(
            rows.filter(pl.col("metric") == "objective"),
            ranked,
            dict.fromkeys(("p_adjusted", "p_signflip_adjusted"), fmt.p_value),
        )
    )
    exploratory = {
        **shared,
        "domain": "concentrated domain",
        "measured": "measured domain",
        "n": "seeds",
        "change": "change in its final test loss (95% CI, unadjusted)",
        "p_value": "p (unadjusted)",
    }
    parts.append("<h3>Each domain's own loss (exploratory)</h3>")
    parts.append(
        table(rows.filter(pl.col("metric") != "objective"), exploratory, {"p_value": fmt.p_value})
    )
    return "\n".join(parts)
