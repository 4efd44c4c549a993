"""Report sections in words and tables: verdicts, references, exposure, speed of learning and
forgetting; `table`, which every section's tables use. The cost section is in report.cost."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import polars as pl

from curriculab.report import fmt
from curriculab.report.words import (
    D1_WORDS,
    Words,
    audit_note,
    is_judged,
    no_verdict,
    sign_flip_note,
)


def _verdict_text(row: dict[str, Any], verdicts: pl.DataFrame, words: Words, judged: bool) -> str:
    """One H1 or H2 test in a sentence with its numbers; a test the audit did not judge gets
    its estimate and interval but no p-value, hypothesis or verdict word."""
    control = row["control"]
    interval = (
        f"95% CI {fmt.loss(row['ci_low'], signed=True)} to {fmt.loss(row['ci_high'], signed=True)}"
    )
    flips = sign_flip_note(row)
    tested = (
        f"p = {fmt.p_value(row['p_value'])}, Holm-adjusted {fmt.p_value(row['p_adjusted'])}"
        + (f"; {flips}" if flips else "")
        if judged
        else "outside the Holm family"
    )
    outcome = f"{row['hypothesis']} {row['verdict']}" if judged else no_verdict(row)
    if row["hypothesis"] == "H1":
        return (
            f"At {words.ratio} {row['ratio']}, {row['schedule']} changes the {words.measure} "
            f"by {fmt.loss(row['estimate'], signed=True)} nats/token against {control} "
            f"({interval}, {tested}, {row['n']} seeds, paired by seed): {outcome}."
        )
    if not row["n"]:  # no seed has two ratios: no slope to fit
        return (
            f"Not testable: H2 needs every seed at two or more {words.ratio} values, and "
            "this study has one (inconclusive, outside the family)."
        )
    text = (
        f"The benefit of {row['schedule']} over {control} (control minus schedule, "
        f"nats/token) changes by {fmt.loss(row['estimate'], signed=True)} per unit of "
        f"ln({words.ratio}) (mean of per-seed slopes; {interval} over {row['n']} seeds; "
        f"{tested}): {outcome}."
    )
    return text + (
        _h2_caveat(verdicts, row["schedule"], row["arm"], words.amount) if judged else ""
    )


def verdict_sentences(verdicts: pl.DataFrame, baseline: str, words: Words = D1_WORDS) -> str:
    """H1 and H2 per learning-rate arm in plain sentences with their numbers and the audit line
    of each comparison (report.words.audit_note), as an HTML list; then how the verdicts were
    reached (the family and its error control). `words` name the ratio and the measured loss
    (the final D1 test loss, or the objective). A test whose comparison differs from its
    control in more than order is listed without a hypothesis or verdict: what it differs in."""
    if verdicts.is_empty():
        return (
            f"<p>No verdicts: the study has no schedule that places {html.escape(words.placed)} "
            "later than the baseline.</p>"
        )
    items, unjudged = [], 0
    for row in verdicts.sort("arm", "hypothesis", "schedule").iter_rows(named=True):
        row["control"] = row.get("control") or baseline  # tables made before the audit
        judged = is_judged(row)
        unjudged += not judged
        text = _verdict_text(row, verdicts, words, judged)
        head = f"{row['hypothesis'] if judged else 'No verdict'}, lr {row['arm']}"
        note = html.escape(audit_note(row, baseline))
        items.append(
            f"<li><b>{html.escape(head)}</b>: {html.escape(text)} "
            f'<span class="audit">({note})</span></li>'
        )
    family = int(verdicts["family_size"].max() or 0)
    outside = (
        f" The {unjudged} listed as <i>no verdict</i> compare cells that differ in more than "
        "order (the comparability audit below): they are stated, never tested."
        if unjudged
        else ""
    )
    rule = (
        f"The {family} tests above {'with a verdict ' if unjudged else ''}are one family; its "
        "family-wise error rate is held at 5% by "
        "Holm's step-down correction (statsmodels). A verdict is <i>supported</i> when the "
        "Holm-adjusted p-value is below 0.05 and the estimate lies on the hypothesis' side of "
        "zero, <i>contradicted</i> when it is below 0.05 on the other side, <i>inconclusive</i> "
        f"otherwise.{outside} The 95% intervals are per test (unadjusted). Comparisons pair "
        "cells of the same seed and learning-rate arm, each schedule against its control: its "
        "matched control where its arm's cooldown follows the schedule's window, else "
        f"{html.escape(baseline)}; H2 fits one slope per seed (the cells of a seed share "
        f"{html.escape(words.subsample)} and the initial weights across ratios), then a "
        "t-interval over seeds. The family holds the schedules named in "
        "analysis.verdict_schedules, by default the one that places "
        f"{html.escape(words.placed)} latest. Every other comparison in this report (heatmap, "
        "tables, other schedules) is exploratory: unadjusted. Beside each t-test, the exact "
        "sign-flip test (every one of the 2<sup>n</sup> sign patterns of the n seed "
        "differences; no normality assumed) is a robustness check that decides nothing: a "
        "verdict it does not reproduce rests on the t-test's normal model. Its smallest "
        "p-value with n seeds is 2/2<sup>n</sup>."
    )
    return f"<ul>{''.join(items)}</ul><p>{rule}</p>"


def _h2_caveat(verdicts: pl.DataFrame, schedule: str, arm: str, amount: str = "D1") -> str:
    """H2 speaks of a benefit shrinking; say so when there is no benefit at any ratio."""
    h1 = verdicts.filter(
        (pl.col("hypothesis") == "H1") & (pl.col("schedule") == schedule) & (pl.col("arm") == arm)
    )
    if h1.height and (h1["estimate"] > 0).all():
        return (
            f" Caution: {schedule} is worse than the baseline at every ratio, so a negative "
            f"slope means its harm grows with the amount of {amount}, not that a benefit shrinks."
        )
    return ""


def reference_section(references: pl.DataFrame, ratio: str = "D1 ratio") -> str:
    """Did the models learn beyond token frequencies? A sentence per verdict, a warning per
    group that did not, and the table of losses against their unigram references."""
    margin = float(references["margin"][0])
    failed = references.filter(~pl.col("learned"))
    if failed.is_empty():
        verdict = (
            f"<p>Every group of cells learned beyond token frequencies: in every seed, every "
            f"domain's final test loss is at least {margin:g} nats/token below the unigram "
            "reference of that cell's own training tokens (smallest gain: "
            f"{fmt.loss(references['gain_min'].min())} nats/token).</p>"
        )
    else:
        groups = "; ".join(
            f"{ratio} {r['ratio']}, {r['schedule']}, lr {r['arm']}, {r['domain']} "
            f"(gain {fmt.loss(r['gain_min'])})"
            for r in failed.iter_rows(named=True)
        )
        verdict = (
            f'<p class="warning"><b>Warning:</b> {failed.height} group(s) did not beat the unigram '
            f"reference by {margin:g} nats/token in every seed, so an ordering effect there may "
            f"be about token frequencies rather than what a language model learns: "
            f"{html.escape(groups)}.</p>"
        )
    return verdict + table(
        references,
        {
            "ratio": ratio,
            "schedule": "schedule",
            "arm": "lr arm",
            "domain": "domain",
            "loss": "final test loss (nats/token)",
            "unigram_loss": "unigram reference",
            "gain_mean": "gain (mean)",
            "gain_min": "gain (smallest seed)",
            "learned": "learned beyond unigram",
        },
        formats=dict.fromkeys(("loss", "unigram_loss", "gain_mean", "gain_min"), fmt.loss),
    )


def exposure_section(exposure: pl.DataFrame, ratio: str = "D1 ratio") -> str:
    """How much learning rate each domain got: token share against learning-rate-weighted
    share, and the mean learning rate of its tokens, per (ratio, schedule, arm), mean over seeds."""
    shares = ("token_share", "lr_weighted_share", "mean_lr_fraction")
    summary = (
        exposure.group_by("ratio", "ratio_value", "schedule", "arm", "domain")
        .agg(pl.col(*shares).mean())
        .sort("ratio_value", "schedule", "arm", "domain")
    )
    return table(
        summary,
        {
            "ratio": ratio,
            "schedule": "schedule",
            "arm": "lr arm",
            "domain": "domain",
            "token_share": "share of tokens",
            "lr_weighted_share": "learning-rate-weighted share",
            "mean_lr_fraction": "mean lr of its tokens (% of peak)",
        },
        formats=dict.fromkeys(shares, fmt.percent),
    )


Format = Callable[[Any], str]


def _cell(value: Any, formatter: Format | None) -> str:
    """One <td>: numbers right-aligned and formatted for people (fmt), text escaped."""
    if value is None:
        return "<td class=num>–</td>"  # no value in this row (not a missing measurement)
    if isinstance(value, bool):
        return f"<td>{'yes' if value else '<b>no</b>'}</td>"
    if formatter is not None:
        return f"<td class=num>{html.escape(formatter(value))}</td>"
    if isinstance(value, int):
        return f"<td class=num>{fmt.count(value)}</td>"
    if isinstance(value, float):
        return f"<td class=num>{fmt.number(value)}</td>"
    return f"<td>{html.escape(str(value))}</td>"


def table(
    frame: pl.DataFrame, columns: dict[str, str], formats: dict[str, Format] | None = None
) -> str:
    """An HTML table of `frame` with the given {column: heading}. formats: {column: function
    of fmt} for columns with a unit (tokens, seconds, losses, shares); other whole numbers read
    as counts (12,345), other floats with 3 decimals."""
    formats = formats or {}
    head = "".join(
        f"<th class=num>{html.escape(h)}</th>"
        if frame.schema[key].is_numeric()
        else f"<th>{html.escape(h)}</th>"
        for key, h in columns.items()
    )
    rows = [
        "<tr>" + "".join(_cell(row[key], formats.get(key)) for key in columns) + "</tr>"
        for row in frame.iter_rows(named=True)
    ]
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def learning_table(cells: pl.DataFrame, target: str | None = None) -> str:
    """Speed of learning and forgetting per (ratio, schedule), mean over seeds. With `target`
    (a study read domain by domain) the headings name it instead of D1 and D2."""
    d1, d2 = (target, "other domains'") if target else ("D1", "D2")
    objective = ["objective_auc"] if "objective_auc" in cells.columns else []
    summary = (
        cells.group_by("ratio", "ratio_value", "schedule", "arm")
        .agg(
            *[pl.col(c).mean() for c in objective],
            pl.col("d1_auc").mean(),
            pl.col("d1_tokens_to_target").mean(),
            pl.col("d1_tokens_to_target").is_not_null().sum().alias("reached"),
            pl.len().alias("seeds"),
            pl.col("d1_target_loss").first(),
            pl.col("d2_forgetting").mean(),
        )
        .sort("ratio_value", "schedule", "arm")
        .with_columns(pl.format("{}/{}", "reached", "seeds").alias("reached_of"))
    )
    return table(
        summary,
        {
            "ratio": f"{d1} ratio",
            "schedule": "schedule",
            "arm": "lr arm",
            **dict.fromkeys(objective, "objective, area under curve / tokens (nats/token)"),
            "d1_auc": f"{d1} loss, area under curve / tokens (nats/token)",
            "d1_target_loss": f"target {d1} loss",
            "d1_tokens_to_target": "tokens to target (mean)",
            "reached_of": "seeds reaching it",
            "d2_forgetting": f"{d2} forgetting (nats/token)",
        },
        formats={
            "objective_auc": fmt.loss,
            "d1_auc": fmt.loss,
            "d1_target_loss": fmt.loss,
            "d1_tokens_to_target": fmt.tokens,
            "d2_forgetting": lambda value: fmt.loss(value, signed=True),
        },
    )
