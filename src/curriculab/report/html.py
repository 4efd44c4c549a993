"""Assemble the study report: one self-contained HTML file that opens offline.

The Vega, Vega-Lite and vega-embed JavaScript comes from vl_convert's bundle and is inlined once;
each chart is a <div> that the bundle fills from its Vega-Lite spec. No CDN is ever referenced, so
the file renders on an air-gapped cluster node or years later from an archive.
"""

from __future__ import annotations

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
from curriculab.report.audit import (
    comparability_section,
    families_section,
    labelled,
    registration_banner,
    registration_text,
    without_controls,
)
from curriculab.report.cost import cost_section
from curriculab.report.d1_charts import d1_charts
from curriculab.report.data import data_section
from curriculab.report.design import design_section
from curriculab.report.domains import domain_verdict_section, named_charts
from curriculab.report.finetune import finetune_section
from curriculab.report.harness import harness_section
from curriculab.report.ladder import ladder_section
from curriculab.report.panel import panel_section
from curriculab.report.sections import (
    exposure_section,
    learning_table,
    reference_section,
    verdict_sentences,
)
from curriculab.report.selection import selection_section
from curriculab.report.study import named_summary_table, study_section, summary_table
from curriculab.report.utility import utility_section
from curriculab.report.words import Words, words_for

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
.audit { color: #555; }
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


def _charts(
    tables: dict[str, pl.DataFrame], study: dict[str, Any], words: Words
) -> tuple[list[Section], dict[str, Any]]:
    """The chart sections in page order, each with a one-line caption that says what to look
    at, and {div id: Vega-Lite spec} for the embed script. A chart's div is "chart-" + its
    section id. A study read domain by domain has its own (report.domains.named_charts)."""
    charts = named_charts(tables, study, words) if words.named else d1_charts(tables, study)
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


def _stage(key: str, title: str, build, summary: dict | None, specs: dict) -> list[Section]:
    """The section of an optional stage's summary (design, ladder, selection), its charts added to
    `specs`; none without the stage."""
    if summary is None:
        return []
    body, charts = build(summary)
    specs.update({key: chart.to_dict() for key, chart in charts.items()})
    return [Section(key, title, body)]


def _sections(
    tables: dict[str, pl.DataFrame],
    study: dict[str, Any],
    provenance: dict[str, Any],
    design: dict[str, Any] | None = None,
    ladder: dict[str, Any] | None = None,
    selection: dict[str, Any] | None = None,
    registration: dict[str, Any] | None = None,
    panels: dict[str, Any] | None = None,
) -> tuple[list[Section], dict[str, Any]]:
    """Every section of the page in order, and the chart specs. An optional table's section
    is one _optional(...) line: it then has its place on the page and in the contents.
    Matched controls are left out of the charts and named in words in the tables
    (report.audit)."""
    baseline, words = study.get("baseline", "shuffled"), words_for(study)
    charts, specs = _charts(without_controls(tables), study, words)
    studied = tables["cells"]
    shown = ("cells", "summary", "exposure", "references", "harness_summary")
    tables = {**tables, **{name: labelled(tables[name]) for name in shown if name in tables}}
    cells = tables["cells"]
    if registration:
        provenance = {**provenance, "verdict family registration": registration_text(registration)}
    if words.named:
        summary = (
            "Summary: the objective and every domain's final test loss (mean ± sample std over "
            "seeds)",
            named_summary_table(cells, list(study["domains"]), words),
        )
    else:
        summary = (
            "Summary: final test loss (mean ± sample std over seeds) and unigram references",
            summary_table(tables["summary"]),
        )
    sections = [
        Section(
            "study", "What was run", study_section(study, studied, words, tables.get("weights"))
        ),
        Section(
            "families",
            "Families of tests, and what each holds fixed",
            families_section(tables, selection, ladder, design),
        ),
        Section("verdicts", "Verdicts", verdict_sentences(tables["verdicts"], baseline, words)),
        *_optional(
            tables,
            "domain_verdicts",
            "domain-verdicts",
            "Per-domain verdicts",
            lambda verdicts: domain_verdict_section(verdicts, baseline, words),
        ),
        *_optional(
            tables,
            "comparisons",
            "audit",
            "Comparability audit: what each comparison differs in",
            lambda comparisons: comparability_section(comparisons, baseline, words, registration),
        ),
        *_stage(
            "design",
            "Design loop: the next cells worth running",
            lambda s: design_section(
                tables["design_points"], tables["design_surface"], s, words, study
            ),
            design,
            specs,
        ),
        *_stage(
            "ladder",
            "Scale ladder: the best mix and window, one scale up",
            lambda s: ladder_section(s, words, study),
            ladder,
            specs,
        ),
        *_stage(
            "selection",
            "Selection: which pool data to train on, and where it goes",
            selection_section,
            selection,
            specs,
        ),
        *_stage(
            "panel",
            "Run panels: predicting the best mixture from many runs",
            panel_section,
            panels,
            specs,
        ),
        *_optional(
            tables,
            "finetune",
            "finetune",
            "Fine-tuning data: which domains to spread, which to keep for the end",
            lambda finetune: finetune_section(finetune, baseline, words),
        ),
        Section(
            "references",
            "Did the models learn beyond token frequencies?",
            reference_section(tables["references"], words.ratio),
        ),
        *_optional(
            tables, "data", "data", "Data", lambda data: data_section(data, tables.get("prepare"))
        ),
        *charts,
        Section(
            "exposure",
            "Exposure: the learning rate each domain was trained at",
            EXPOSURE_TEXT + exposure_section(tables["exposure"], words.ratio),
        ),
        Section("summary", *summary),
        *_optional(
            tables,
            "harness_summary",
            "harness",
            "Harness tasks (lm-evaluation-harness)",
            lambda summary: harness_section(summary, baseline),
        ),
        Section(
            "speed",
            "Speed of learning and forgetting",
            learning_table(cells, study["target_domain"] if words.named else None),
        ),
        *_optional(tables, "utility", "utility", "Domain utility by removal", utility_section),
        Section(
            "cost",
            "Cost",
            cost_section(cells, tables.get("trunks"), words.ratio, study.get("planned")),
        ),
        Section("provenance", "Provenance", _provenance(provenance)),
    ]
    return sections, specs


def _intro(study: dict[str, Any], words: Words) -> str:
    """The sentence under the title: what the study asks, and the unit of every loss."""
    unit = "Losses are mean cross-entropy on each domain's held-out test split, in nats per token."
    if not words.named:
        return (
            "How the order of target-domain (D1) and general-domain (D2) pretraining data changes "
            f"test loss.\n{unit}"
        )
    objective = study.get("objective") or "the utility-weighted test loss"
    domains = ", ".join(str(d) for d in study["domains"])
    return f"How the order of pretraining data from {domains} changes {objective}. {unit}"


def render_report(
    tables: dict[str, pl.DataFrame],
    study: dict[str, Any],
    out_path: Path,
    provenance: dict[str, Any] | None = None,
    design: dict[str, Any] | None = None,
    ladder: dict[str, Any] | None = None,
    selection: dict[str, Any] | None = None,
    registration: dict[str, Any] | None = None,
    panels: dict[str, Any] | None = None,
) -> None:
    """Write the study report to out_path as one self-contained HTML file (atomically).

    tables: cells, summary, curves, barcodes, lr_profile, paired, verdicts, references and
    exposure, as the aggregate step writes them; optionally data (report.data.data_table)
    with prepare (report.data.prepare_table: how each domain's documents were read and cleaned),
    harness_summary (lm-evaluation-harness scores), utility (domain utility by removal),
    domain_verdicts and finetune (analysis.domains, analysis.finetune), each a section only
    when it has rows, weights (the utility weights, listed when the study states a utility),
    domain_barcodes (every domain's strip) and trunks (the cost section's trunk segments).
    study: name, target_domain, domains, ratios, schedules, seeds, model_preset, baseline (as in
    config), objective and utility. A study read domain by domain (K > 2 or a stated utility,
    report.words) names its domains and judges the objective; a two-domain study reads D1/D2.
    design: the design loop's summary (design.summary), with tables design_points and
    design_surface; None without a design. ladder: the scale ladder's summary (ladder.tables),
    None without a ladder. selection: the select stage's summary (selection.summary), None
    without one. registration: results/analysis/preregistration.json (analysis.registration):
    its hash and time are stated, and a warning tops the page when the family changed after results.
    panels: {"panels": [(summary, predictions)]} of the run panels (curriculab.panel), None
    without them.
    """
    sections, specs = _sections(
        tables, study, provenance or {}, design, ladder, selection, registration, panels
    )
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
{registration_banner(registration)}
<p>{html.escape(_intro(study, words_for(study)), quote=False)}</p>
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
