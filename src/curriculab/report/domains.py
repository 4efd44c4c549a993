"""The parts of the page of a study read domain by domain (report.words.named_words): its charts
(every domain's strip and learning curves, the objective's final loss and paired changes) and
the per-domain verdicts (analysis.domains.domain_verdicts)."""

from __future__ import annotations

import html
from typing import Any

import altair as alt
import polars as pl

from curriculab.report import fmt
from curriculab.report.charts import benefit_chart, final_loss_chart, paired_heatmap
from curriculab.report.domain_charts import (
    domain_barcode_chart,
    domain_curve_chart,
    target_as_domain,
)
from curriculab.report.sections import table
from curriculab.report.words import Words, audit_note, is_judged, no_verdict, sign_flip_note

ChartEntry = tuple[str, str, str, alt.TopLevelMixin]
"""(section id, heading, one-line caption, chart) of one chart section."""


def _barcodes(tables: dict[str, pl.DataFrame], study: dict[str, Any], words: Words) -> ChartEntry:
    """Every domain's strip; only the target's where the stream summaries predate
    share_by_bin (the caption says so)."""
    by_domain = tables.get("domain_barcodes")
    caption = (
        "Read each block left to right: a bright stretch is where that domain sits; the line "
        "under it is the learning rate the domain meets there."
    )
    if by_domain is None or by_domain.is_empty():
        by_domain = target_as_domain(tables["barcodes"], study["target_domain"])
        caption = (
            f"Only {study['target_domain']}'s strip: these streams' summaries record no other "
            "domain's share (rebuild the streams for every strip); the line is the learning rate."
        )
    chart = domain_barcode_chart(by_domain, tables["lr_profile"], list(study["domains"]), words)
    return ("barcodes", "The schedules: every domain's share and the learning rate", caption, chart)


def named_charts(
    tables: dict[str, pl.DataFrame], study: dict[str, Any], words: Words
) -> list[ChartEntry]:
    """The chart sections of a study read domain by domain, in page order: the strips, one
    learning-curve chart per domain, the objective's final loss, and (with paired rows of the
    objective) its paired change against the baseline and the H2 chart."""
    target, baseline = study["target_domain"], study.get("baseline", "shuffled")
    charts = [_barcodes(tables, study, words)]
    for domain in study["domains"]:
        label = f"{domain} (target)" if domain == target else domain
        charts.append(
            (
                f"curves-{domain}",
                f"{label} learning curves",
                f"Lower is better; compare every schedule's {domain} loss with {baseline}'s, and "
                "all of them with the dashed unigram reference.",
                domain_curve_chart(tables["curves"], domain, label, words),
            )
        )
    charts.append(
        (
            "final-loss",
            words.measure[0].upper() + words.measure[1:],
            f"Lower is better; compare each schedule's tick with {baseline}'s in the same panel "
            "(each panel has its own scale); the dots show the spread over seeds.",
            final_loss_chart(tables["cells"], words),
        )
    )
    paired = tables["paired"].filter(pl.col("metric") == words.column)
    if not paired.is_empty():
        charts += [
            (
                "paired",
                "Benefit over the baseline",
                f"Blue: the schedule lowers the objective against {baseline} at that ratio, red: "
                "it raises it; look for intervals that exclude 0 (exploratory).",
                paired_heatmap(paired, words.column, words),
            ),
            (
                "h2",
                f"H2: benefit against the amount of {target}",
                f"Above 0: better than {baseline}; H2 expects each line to fall as the {target} "
                "ratio grows (the benefit shrinks with more of it).",
                benefit_chart(paired, words.column, words),
            ),
        ]
    return charts


def _change(row: dict[str, Any]) -> str:
    """ "+0.050 [+0.046, +0.054]" (nats/token)."""
    signed = [fmt.loss(row[key], signed=True) for key in ("estimate", "ci_low", "ci_high")]
    return f"{signed[0]} [{signed[1]}, {signed[2]}]"


DOMAIN_VERDICT_TEXT = """Each test compares a schedule of the verdict family with its control (its
matched control where its arm's cooldown follows the schedule's window, else {baseline}) on one
domain's final test loss: the change (schedule minus control, nats/token) paired by seed, its
mean with a 95% t-interval. The {family} {judged}tests are one family of their own, separate
from the H1/H2 verdicts; Holm's step-down correction holds its family-wise error rate at 5%.
Lowered / raised: the schedule significantly lowers / raises that domain's loss (Holm-adjusted p
below 0.05); inconclusive otherwise. A comparison that differs in more than order gets no
verdict."""


def domain_verdict_section(verdicts: pl.DataFrame, baseline: str, words: Words) -> str:
    """The per-domain verdicts: how they were reached, the significant ones in sentences, then
    every test in a table with its audit line; a test whose comparison differs from its
    control in more than order has no verdict, and says what it differs in."""
    family = int(verdicts["family_size"].max() or 0)
    records = list(verdicts.iter_rows(named=True))
    judged = [is_judged(r) for r in records]
    intro = DOMAIN_VERDICT_TEXT.format(
        baseline=baseline, family=family, judged="" if all(judged) else "judged "
    )
    items = [
        f"{r['schedule']}, lr {r['arm']}, {words.ratio} {r['ratio']}: the final {r['domain']} "
        f"test loss changes by {fmt.loss(r['estimate'], signed=True)} nats/token (95% CI "
        f"{fmt.loss(r['ci_low'], signed=True)} to {fmt.loss(r['ci_high'], signed=True)}, "
        f"Holm-adjusted p = {fmt.p_value(r['p_adjusted'])}; {sign_flip_note(r)}): "
        f"{r['verdict']} "
        f"({audit_note(r, baseline)})."
        for r, ok in zip(records, judged, strict=True)
        if ok and r["verdict"] != "inconclusive"
    ]
    if not all(judged):
        items.append(
            f"{judged.count(False)} test(s) have no verdict: their comparisons differ in more "
            "than order (the table says in what)."
        )
    listed = (
        "<ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in items) + "</ul>"
        if items
        else "<p>No schedule changes any domain's loss significantly.</p>"
    )
    rows = verdicts.with_columns(
        pl.Series("change", [_change(r) for r in records], pl.String),
        pl.Series(
            "verdict_text",
            [r["verdict"] if ok else no_verdict(r) for r, ok in zip(records, judged, strict=True)],
            pl.String,
        ),
        pl.Series("audit", [audit_note(r, baseline) for r in records], pl.String),
    )
    columns = {
        "schedule": "schedule",
        "arm": "lr arm",
        "ratio": words.ratio,
        "domain": "domain",
        "n": "seeds",
        "change": "change in final test loss (95% CI)",
        "p_value": "p",
        "p_adjusted": "Holm-adjusted p",
        "p_signflip": "sign-flip p",
        "audit": "comparability audit",
        "verdict_text": "verdict",
    }
    p_values = dict.fromkeys(("p_value", "p_adjusted", "p_signflip"), fmt.p_value)
    return f"<p>{html.escape(' '.join(intro.split()))}</p>{listed}" + table(rows, columns, p_values)
