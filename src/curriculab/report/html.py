"""Assemble the study report: one self-contained HTML file that opens offline.

The Vega, Vega-Lite and vega-embed JavaScript comes from vl_convert's bundle and is inlined once;
each chart is a <div> that the bundle fills from its Vega-Lite spec. No CDN is ever referenced, so
the file renders on an air-gapped cluster node or years later from an archive.
"""

from __future__ import annotations

import datetime
import html
import json
from pathlib import Path
from typing import Any

import altair as alt
import polars as pl
import vl_convert

from curriculab.io import atomic_path
from curriculab.report.charts import (
    barcode_chart,
    benefit_chart,
    final_loss_chart,
    learning_curve_chart,
    paired_heatmap,
)
from curriculab.report.sections import (
    cost_table,
    exposure_section,
    learning_table,
    reference_section,
    table,
    verdict_sentences,
)

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
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3em 0.9em; text-align: left; }
td.num { text-align: right; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1.2em; }
dt { font-weight: 600; }
.warning { background: #fff4e5; border-left: 4px solid #e67e00; padding: 0.5em 0.8em; }
.chart-error { color: #b00; white-space: pre-wrap; }
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


def _fmt(value: float | None) -> str:
    """A loss with 4 decimals (nats/token); a dash when unknown."""
    return "–" if value is None else f"{value:.4f}"


def _mean_std(mean: float | None, std: float | None) -> str:
    """ "mean ± std"; std is null (one seed) prints as "n/a" rather than a misleading 0."""
    return f"{_fmt(mean)} ± {'n/a' if std is None else _fmt(std)}"


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
            f"<td class=num>{int(r['n_seeds'])}</td>",
            f"<td class=num>{_mean_std(r['d1_test_loss_mean'], r['d1_test_loss_std'])}</td>",
            f"<td class=num>{_fmt(r['d1_unigram_loss_mean'])}</td>",
            f"<td class=num>{_mean_std(r['d2_test_loss_mean'], r['d2_test_loss_std'])}</td>",
            f"<td class=num>{_fmt(r['d2_unigram_loss_mean'])}</td>",
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    header = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    return f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _listing(values: list[Any]) -> str:
    """Comma-separated values; str() so float ratios or int seeds from a config also work."""
    return ", ".join(str(value) for value in values)


def _study_section(study: dict[str, Any], cells: pl.DataFrame) -> str:
    """The "what was run" list: study name, grid, model preset, tokens per cell, date."""
    arms = study.get("arms") or {"-": "as in train"}
    grid = len(study["ratios"]) * len(study["schedules"]) * len(arms) * len(study["seeds"])
    n_cells = cells.height
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
            f"{n_cells} with results of {grid} in the grid "
            "(ratios × schedules × learning-rate arms × seeds)"
        ),
        "model preset": study["model_preset"],
        "training tokens per cell (by ratio)": ", ".join(
            f"{value:,.0f}" for value in tokens["tokens_seen"].to_list()
        ),
        "baseline": study.get("baseline", "shuffled"),
        "report date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    body = "".join(
        f"<dt>{html.escape(key)}</dt><dd>{html.escape(str(value))}</dd>"
        for key, value in items.items()
    )
    return f"<h2>What was run</h2><dl>{body}</dl>"


def _charts(tables: dict[str, pl.DataFrame], study: dict[str, Any]) -> dict[str, Any]:
    """Div id -> (heading, Vega-Lite spec) for each chart, in page order."""
    target = study["target_domain"]
    others = ", ".join(d for d in study["domains"] if d != target)
    curves, cells = tables["curves"], tables["cells"]
    charts = {
        "chart-barcodes": (
            "The schedules: D1 share and learning rate over training",
            barcode_chart(tables["barcodes"], tables["lr_profile"]),
        ),
        "chart-d1-curves": (
            f"D1 ({target}) learning curves",
            learning_curve_chart(curves, f"D1 ({target})", True),
        ),
        "chart-d2-curves": (
            f"D2 ({others}) learning curves",
            learning_curve_chart(curves, f"D2 ({others})", False),
        ),
        "chart-final-loss": ("Final D1 test loss", final_loss_chart(cells)),
    }
    if not tables["paired"].is_empty():
        charts["chart-paired"] = ("Benefit over the baseline", paired_heatmap(tables["paired"]))
        charts["chart-h2"] = (
            "H2: benefit against the amount of D1",
            benefit_chart(tables["paired"]),
        )
    return {key: (heading, chart.to_dict()) for key, (heading, chart) in charts.items()}


def _provenance(provenance: dict[str, Any]) -> str:
    """Git commit, versions, hardware, the config's hash and the config itself."""
    config = provenance.get("config_yaml", "")
    items = "".join(
        f"<dt>{html.escape(str(k))}</dt><dd>{html.escape(str(v))}</dd>"
        for k, v in provenance.items()
        if k != "config_yaml"
    )
    return f"<h2>Provenance</h2><dl>{items}</dl><pre>{html.escape(config)}</pre>"


def render_report(
    tables: dict[str, pl.DataFrame],
    study: dict[str, Any],
    out_path: Path,
    provenance: dict[str, Any] | None = None,
) -> None:
    """Write the study report to out_path as one self-contained HTML file (atomically).

    tables: cells, summary, curves, barcodes, lr_profile, paired, verdicts, references and
    exposure (and optionally data), as the
    aggregate step writes them. study: name, target_domain, domains, ratios, schedules, seeds,
    model_preset, baseline (as in config).
    """
    cells = tables["cells"]
    charts = _charts(tables, study)
    sections = "".join(
        f'<h2>{html.escape(heading)}</h2><div class="chart" id="{key}"></div>'
        for key, (heading, _) in charts.items()
    )
    specs = {key: spec for key, (_, spec) in charts.items()}
    title = html.escape(f"curriculab report: {study['name']}")
    baseline = study.get("baseline", "shuffled")
    cost, totals = cost_table(cells)
    data = tables.get("data")
    data_section = (
        "" if data is None else "<h2>Data</h2>" + table(data, {c: c for c in data.columns})
    )
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
{_study_section(study, cells)}
<h2>Verdicts</h2>
{verdict_sentences(tables["verdicts"], baseline)}
<h2>Did the models learn beyond token frequencies?</h2>
{reference_section(tables["references"])}
{data_section}
{sections}
<h2>Exposure: the learning rate each domain was trained at</h2>
<p>Under a decaying learning rate, data placed late is also data trained at a small learning
rate. The learning-rate-weighted share of a domain is the sum of lr(t) over its sequences divided
by the same sum over all sequences; below its share of tokens, the domain sat where the learning
rate was low.</p>
{exposure_section(tables["exposure"])}
<h2>Summary: final test loss (mean ± sample std over seeds) and unigram references</h2>
{_summary_table(tables["summary"])}
<h2>Speed of learning and forgetting</h2>
{learning_table(cells)}
<h2>Cost</h2>
{table(pl.DataFrame([totals]), {k: k for k in totals}, digits=0)}
{cost}
{_provenance(provenance or {})}
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
