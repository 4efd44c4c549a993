"""Assemble the study report: one self-contained HTML file that opens offline.

The Vega, Vega-Lite and vega-embed JavaScript comes from vl_convert's bundle and is inlined once;
each chart is a <div> that the bundle fills from its Vega-Lite spec. No CDN is ever referenced, so
the file renders on an air-gapped cluster node or years later from an archive.
"""

from __future__ import annotations

import datetime
import html
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import altair as alt
import polars as pl
import vl_convert

from curriculab.io import atomic_path
from curriculab.report import fmt
from curriculab.report.charts import (
    barcode_chart,
    benefit_chart,
    final_loss_chart,
    learning_curve_chart,
    paired_heatmap,
)
from curriculab.report.cost import cost_section
from curriculab.report.harness import harness_section
from curriculab.report.sections import (
    exposure_section,
    learning_table,
    reference_section,
    table,
    verdict_sentences,
)
from curriculab.report.utility import utility_section

# svg (not canvas) so the rendered charts are text in the DOM: crisp when zoomed, and testable.
EMBED_OPTIONS = {
    "renderer": "svg",
    "actions": {"export": True, "source": False, "compiled": False, "editor": False},
}

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1360px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2em; }
.chart { margin: 1em 0 2.5em; overflow-x: auto; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; margin: 0.5em 0 1.2em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3em 0.9em; text-align: left; }
th.num, td.num { text-align: right; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1.2em; }
dt { font-weight: 600; }
.warning { background: #fff4e5; border-left: 4px solid #e67e00; padding: 0.5em 0.8em; }
.chart-error { color: #b00; white-space: pre-wrap; }
.caption { color: #444; font-style: italic; margin: 0.2em 0 0.4em; }
nav.toc { background: #f6f8fa; border: 1px solid #ddd; padding: 0.5em 1em; margin: 1em 0 1.5em; }
nav.toc ol { columns: 2; column-gap: 2.5em; margin: 0.3em 0 0; }
h2 { scroll-margin-top: 0.5em; }
"""

# Runs after the bundle: embeds every spec into its div and shows any failure in place.
EMBED_SCRIPT = """
for (const [id, spec] of Object.entries(CHART_SPECS)) {
  vegaEmbed("#" + id, spec, EMBED_OPTIONS).catch((error) => {
    const box = document.createElement("pre");
    box.className = "chart-error";
    box.textContent = "Chart failed to render: " + error;
    document.getElementById(id).appendChild(box);
  });
}
"""


def _script_json(payload: Any) -> str:
    """JSON that is safe inside <script>: "<" is escaped so no text can close the element."""
    return json.dumps(payload, allow_nan=False).replace("<", "\\u003c")


def _vega_bundle() -> str:
    """vega-embed + Vega-Lite + Vega as one script, matching the Vega-Lite version altair emits."""
    vl_version = "_".join(alt.SCHEMA_VERSION.split(".")[:2])  # "v6.4.1" -> "v6_4"
    bundle = vl_convert.javascript_bundle(vl_version=vl_version)
    if "</script" in bundle.lower():  # would end the inline <script> early and break the page
        raise ValueError("vl_convert bundle contains '</script'; cannot inline it safely")
    return bundle


@dataclass(frozen=True)
class Section:
    """One <h2> section of the page and its entry in the table of contents.

    id: the anchor (#id); fixed in code rather than derived from the heading, so a link into a
    report keeps working when a heading is reworded. body: HTML, every text in it escaped.
    """

    id: str
    heading: str
    body: str

    def to_html(self) -> str:
        return f'<h2 id="{self.id}">{html.escape(self.heading)}</h2>\n{self.body}'


def _contents(sections: list[Section]) -> str:
    """The table of contents: a link to every section that is on the page, in page order."""
    links = "".join(
        f'<li><a href="#{section.id}">{html.escape(section.heading)}</a></li>'
        for section in sections
    )
    return f'<nav class="toc" aria-label="Contents"><b>Contents</b><ol>{links}</ol></nav>'


def _optional(
    tables: dict[str, pl.DataFrame],
    name: str,
    section_id: str,
    heading: str,
    render: Callable[[pl.DataFrame], str],
) -> list[Section]:
    """The section of the optional table `name` (its body: render(table)); none, so no entry in
    the contents either, when the table is absent or empty."""
    frame = tables.get(name)
    return (
        [] if frame is None or frame.is_empty() else [Section(section_id, heading, render(frame))]
    )


def _all_columns(frame: pl.DataFrame) -> str:
    """A table of every column under its own name; columns named "tokens" read as 1.23M."""
    return table(frame, {c: c for c in frame.columns}, {"tokens": fmt.tokens})


def _mean_std(mean: float | None, std: float | None) -> str:
    """ "mean ± std" in nats/token; std is null (one seed) prints as "n/a" rather than a
    misleading 0."""
    return f"{fmt.loss(mean)} ± {fmt.loss(std)}"


def _summary_table(summary: pl.DataFrame) -> str:
    """The per-(ratio, schedule, arm) summary as an HTML table; all text escaped."""
    head = [
        "D1 ratio",
        "schedule",
        "lr arm",
        "seeds",
        "D1 test loss (nats/token)",
        "D1 unigram reference",
        "D2 test loss (nats/token)",
        "D2 unigram reference",
    ]
    rows = []
    for r in summary.sort("ratio_value", "schedule", "arm").iter_rows(named=True):
        cells = [
            f"<td>{html.escape(str(r['ratio']))}</td>",
            f"<td>{html.escape(str(r['schedule']))}</td>",
            f"<td>{html.escape(str(r['arm']))}</td>",
            f"<td class=num>{fmt.count(r['n_seeds'])}</td>",
            f"<td class=num>{_mean_std(r['d1_test_loss_mean'], r['d1_test_loss_std'])}</td>",
            f"<td class=num>{fmt.loss(r['d1_unigram_loss_mean'])}</td>",
            f"<td class=num>{_mean_std(r['d2_test_loss_mean'], r['d2_test_loss_std'])}</td>",
            f"<td class=num>{fmt.loss(r['d2_unigram_loss_mean'])}</td>",
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    header = "".join(  # from "seeds" on, the columns hold numbers: right-aligned
        f"<th{' class=num' if i >= 3 else ''}>{html.escape(h)}</th>" for i, h in enumerate(head)
    )
    return f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _listing(values: list[Any]) -> str:
    """Comma-separated values; str() so float ratios or int seeds from a config also work."""
    return ", ".join(str(value) for value in values)


def _study_section(study: dict[str, Any], cells: pl.DataFrame) -> str:
    """The "what was run" list: study name, grid, model preset, tokens per cell, date."""
    arms = study.get("arms") or {"-": "as in train"}
    grid = len(study["ratios"]) * len(study["schedules"]) * len(arms) * len(study["seeds"])
    tokens = cells.group_by("ratio_value").agg(pl.col("tokens_seen").mean()).sort("ratio_value")
    items = {
        "study": study["name"],
        "target domain (D1)": study["target_domain"],
        "domains": _listing(study["domains"]),
        "D1 ratios (D1 / D2 train blocks)": _listing(study["ratios"]),
        "schedules": _listing(study["schedules"]),
        "learning-rate arms": "; ".join(f"{name}: {text}" for name, text in arms.items()),
        "seeds": _listing(study["seeds"]),
        "cells": (
            f"{cells.height} with results of {grid} in the grid "
            "(ratios × schedules × learning-rate arms × seeds)"
        ),
        "model preset": study["model_preset"],
        "training tokens per cell (by ratio)": ", ".join(
            fmt.tokens(value) for value in tokens["tokens_seen"].to_list()
        ),
        "baseline": study.get("baseline", "shuffled"),
        "report date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    body = "".join(
        f"<dt>{html.escape(key)}</dt><dd>{html.escape(str(value))}</dd>"
        for key, value in items.items()
    )
    return f"<dl>{body}</dl>"


def _charts(
    tables: dict[str, pl.DataFrame], study: dict[str, Any]
) -> tuple[list[Section], dict[str, Any]]:
    """The chart sections in page order, each with a one-line caption that says what to look
    at, and {div id: Vega-Lite spec} for the embed script. A chart's div is "chart-" + its
    section id."""
    target, baseline = study["target_domain"], study.get("baseline", "shuffled")
    others = ", ".join(d for d in study["domains"] if d != target)
    curves, cells = tables["curves"], tables["cells"]
    charts = [  # (section id, heading, caption, chart)
        (
            "barcodes",
            "The schedules: D1 share and learning rate over training",
            "Read each strip left to right: yellow is where D1 sits; the line under it is the "
            "learning rate D1 meets there.",
            barcode_chart(tables["barcodes"], tables["lr_profile"]),
        ),
        (
            "d1-curves",
            f"D1 ({target}) learning curves",
            f"Lower is better; in each panel compare every schedule's line with {baseline}'s, "
            "and all of them with the dashed unigram reference.",
            learning_curve_chart(curves, f"D1 ({target})", True),
        ),
        (
            "d2-curves",
            f"D2 ({others}) learning curves",
            "Lower is better; a line that rises late in training is D2 being forgotten while "
            "D1 takes over the stream.",
            learning_curve_chart(curves, f"D2 ({others})", False),
        ),
        (
            "final-loss",
            "Final D1 test loss",
            f"Lower is better; compare each schedule's tick with {baseline}'s in the same panel "
            "(each panel has its own scale); the dots show the spread over seeds.",
            final_loss_chart(cells),
        ),
    ]
    if not tables["paired"].is_empty():
        charts += [
            (
                "paired",
                "Benefit over the baseline",
                f"Blue: the schedule lowers final D1 loss against {baseline} at that ratio, "
                "red: it raises it; look for intervals that exclude 0 (exploratory).",
                paired_heatmap(tables["paired"]),
            ),
            (
                "h2",
                "H2: benefit against the amount of D1",
                f"Above 0: better than {baseline}; H2 expects each line to fall as the D1 "
                "ratio grows (the benefit shrinks with more D1).",
                benefit_chart(tables["paired"]),
            ),
        ]
    sections = [
        Section(
            key,
            heading,
            f'<p class="caption" id="caption-{key}">{html.escape(caption)}</p>'
            f'<div class="chart" id="chart-{key}" aria-describedby="caption-{key}"></div>',
        )
        for key, heading, caption, _ in charts
    ]
    return sections, {f"chart-{key}": chart.to_dict() for key, _, _, chart in charts}


def _provenance(provenance: dict[str, Any]) -> str:
    """Git commit, versions, hardware, the config's hash and the config itself."""
    config = provenance.get("config_yaml", "")
    items = "".join(
        f"<dt>{html.escape(str(k))}</dt><dd>{html.escape(str(v))}</dd>"
        for k, v in provenance.items()
        if k != "config_yaml"
    )
    return f"<dl>{items}</dl><pre>{html.escape(config)}</pre>"


EXPOSURE_TEXT = """<p>Under a decaying learning rate, data placed late is also data trained at a
small learning rate. The learning-rate-weighted share of a domain is the sum of lr(t) over its
sequences divided by the same sum over all sequences; below its share of tokens, the domain sat
where the learning rate was low.</p>"""


def _sections(
    tables: dict[str, pl.DataFrame], study: dict[str, Any], provenance: dict[str, Any]
) -> tuple[list[Section], dict[str, Any]]:
    """Every section of the page in order, and the chart specs. An optional table's section
    is one _optional(...) line: it then has its place on the page and in the contents."""
    cells = tables["cells"]
    charts, specs = _charts(tables, study)
    sections = [
        Section("study", "What was run", _study_section(study, cells)),
        Section(
            "verdicts",
            "Verdicts",
            verdict_sentences(tables["verdicts"], study.get("baseline", "shuffled")),
        ),
        Section(
            "references",
            "Did the models learn beyond token frequencies?",
            reference_section(tables["references"]),
        ),
        *_optional(tables, "data", "data", "Data", _all_columns),
        *charts,
        Section(
            "exposure",
            "Exposure: the learning rate each domain was trained at",
            EXPOSURE_TEXT + exposure_section(tables["exposure"]),
        ),
        Section(
            "summary",
            "Summary: final test loss (mean ± sample std over seeds) and unigram references",
            _summary_table(tables["summary"]),
        ),
        *_optional(
            tables,
            "harness_summary",
            "harness",
            "Harness tasks (lm-evaluation-harness)",
            lambda summary: harness_section(summary, study.get("baseline", "shuffled")),
        ),
        Section("speed", "Speed of learning and forgetting", learning_table(cells)),
        *_optional(tables, "utility", "utility", "Domain utility by removal", utility_section),
        Section("cost", "Cost", cost_section(cells, tables.get("trunks"))),
        Section("provenance", "Provenance", _provenance(provenance)),
    ]
    return sections, specs


def render_report(
    tables: dict[str, pl.DataFrame],
    study: dict[str, Any],
    out_path: Path,
    provenance: dict[str, Any] | None = None,
) -> None:
    """Write the study report to out_path as one self-contained HTML file (atomically).

    tables: cells, summary, curves, barcodes, lr_profile, paired, verdicts, references and
    exposure, as the aggregate step writes them; optionally data (report.data.data_table),
    harness_summary (lm-evaluation-harness scores) and utility (domain utility by removal), each
    a section only when present, and trunks (the cost section's trunk segments). study: name,
    target_domain, domains, ratios, schedules, seeds, model_preset, baseline (as in config).
    """
    sections, specs = _sections(tables, study, provenance or {})
    title = html.escape(f"curriculab report: {study['name']}")
    body = "\n".join(section.to_html() for section in sections)
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>{STYLE}</style>
<script>{_vega_bundle()}</script>
</head>
<body>
<h1>{title}</h1>
<p>How the order of target-domain (D1) and general-domain (D2) pretraining data changes test loss.
Losses are mean cross-entropy on each domain's held-out test split, in nats per token.</p>
{_contents(sections)}
{body}
<script>
const CHART_SPECS = {_script_json(specs)};
const EMBED_OPTIONS = {_script_json(EMBED_OPTIONS)};
{EMBED_SCRIPT}
</script>
</body>
</html>
"""
    with atomic_path(out_path) as tmp:
        tmp.write_text(page, encoding="utf-8")
