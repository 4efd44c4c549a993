"""The report's "Run panels" section (curriculab.panel): per panel, how well each regressor
ranked runs it had not seen, the chosen one's predictions against the truth, the ranking and
the proposed mixture."""

from __future__ import annotations

import html
import re
from typing import Any

import altair as alt
import polars as pl

from curriculab.report import fmt
from curriculab.report.chart_base import readable, records
from curriculab.report.sections import table

PANEL_TEXT = """A panel is a table of runs: each run's mixture of domains (per phase) and what it
measured. Every regressor (linear least squares; the log-linear data-mixing law of Ye et al.
2024; LightGBM, RegMix's; a Gaussian process) is fitted on {folds} - 1 folds and predicts the
held-out fold ({folds}-fold, shuffled), so every run has a prediction made without it. The
regressor chosen is the one whose out-of-fold predictions rank the runs best (Spearman);
regret@1 is the true metric of the run it predicts best minus the true best. The proposal
averages the best {top} of {candidates:,} candidate mixtures (drawn around the natural
mixture, plus the runs) by the chosen regressor's prediction; its interval is the range of
the predictions of the {folds} fold models there. Lower metrics are better."""


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", name)


def _scores_table(summary: dict[str, Any]) -> str:
    rows = [
        {"regressor": name + (" (chosen)" if name == summary["best"] else ""),
         "spearman": s["spearman"], "regret": s["regret_at_1"]}
        for name, s in summary["scores"].items()
    ]  # fmt: skip
    return table(
        pl.DataFrame(rows),
        {"regressor": "regressor", "spearman": "out-of-fold Spearman", "regret": "regret@1"},
        {"spearman": fmt.number, "regret": fmt.number},
    )


def _proposal_table(proposal: dict[str, Any], natural: dict[str, float] | None) -> str:
    rows = [
        {"phase": phase, "domain": domain, "weight": weight,
         "natural": None if natural is None else natural[domain]}
        for phase, mixture in proposal["mixture"].items()
        for domain, weight in mixture.items()
    ]  # fmt: skip
    names = {"phase": "phase", "domain": "domain", "weight": "weight"}
    if natural is not None:
        names["natural"] = "natural mixture"
    frame = pl.DataFrame(rows).select(list(names))
    return table(frame, names, {"weight": fmt.number, "natural": fmt.number})


def _constraints_text(c: dict[str, Any] | None) -> str:
    """What the proposal was held to (summary.json's `constraints`), in a sentence."""
    if not c:
        return ""
    natural = "uniform" if c["natural"] is None else "the table's column below"
    if c["tokens"] and c["budget_tokens"] and c["max_epochs"]:
        cap = (f"at most {c['max_epochs']:g} epoch(s) of each domain's tokens at "
               f"{c['budget_tokens']:,.0f} training tokens")  # fmt: skip
    else:
        cap = "no epoch cap (it needs tokens, budget_tokens and max_epochs)"
    kl = f", KL weight {fmt.number(c['kl'])} toward the natural mixture" if c["kl"] else ""
    inside = "; within the range of weights the runs cover" if c.get("within_runs") else ""
    return f"<p>Held to: natural mixture {natural}; {cap}{kl}{inside}.</p>"


def _next_table(upcoming: list[dict[str, Any]], best: str) -> list[str]:
    if not upcoming:
        return []
    rows = [
        {"run": k + 1, "mixture": "; ".join(
            f"phase {p}: " + ", ".join(f"{d} {w:.2f}" for d, w in mix.items())
            for p, mix in run["mixture"].items()), "mean": run["mean"], "sd": run["sd"]}
        for k, run in enumerate(upcoming)
    ]  # fmt: skip
    return [
        f"<p>Next runs worth training, with the chosen regressor ({html.escape(best)}) as the "
        "surrogate: lowest predicted mean - 2 sd among the candidates (sd: a GP's own, else "
        "the spread of the fold models' predictions), each apart from the runs and from one "
        "another:</p>",
        table(
            pl.DataFrame(rows),
            {"run": "#", "mixture": "mixture", "mean": "predicted", "sd": "sd"},
            {"mean": fmt.number, "sd": fmt.number},
        ),
    ]


def _ranked_table(ranked: pl.DataFrame, best: str) -> str:
    column = f"oof_{best}"
    return table(
        ranked,
        {"run": "run", column: "predicted", "actual": "actual"},
        {column: fmt.number, "actual": fmt.number},
    )


def _chart(predictions: pl.DataFrame, best: str, metric: str) -> alt.TopLevelMixin:
    data = predictions.select("run", "actual", pl.col(f"oof_{best}").alias("predicted"))
    low = min(data["actual"].min(), data["predicted"].min())
    high = max(data["actual"].max(), data["predicted"].max())
    scale = alt.Scale(domain=[low, high], zero=False)
    points = (
        alt.Chart(records(data))
        .mark_point(filled=True, size=40, opacity=0.7)
        .encode(
            x=alt.X("predicted:Q", title=f"predicted {metric} (out of fold)", scale=scale),
            y=alt.Y("actual:Q", title=f"actual {metric}", scale=scale),
            tooltip=["run:N", alt.Tooltip("predicted:Q", format=".4f"),
                     alt.Tooltip("actual:Q", format=".4f")],
        )
    )  # fmt: skip
    diagonal = (
        alt.Chart(records(pl.DataFrame({"x": [low, high], "y": [low, high]})))
        .mark_line(strokeDash=[4, 4], color="#888")
        .encode(x="x:Q", y="y:Q")
    )
    return readable((diagonal + points).properties(width=320, height=320))


def panel_section(summary: dict[str, Any]) -> tuple[str, dict[str, alt.TopLevelMixin]]:
    """The section's HTML and its charts; `summary`: {"panels": [(summary, predictions)]}."""
    parts, charts = [], {}
    for panel, predictions in summary["panels"]:
        proposal, key = panel["proposal"], f"chart-panel-{_slug(panel['name'])}"
        ranked = predictions.sort(f"oof_{panel['best']}").head(5)
        parts += [
            f"<h3>{html.escape(panel['name'])}: {panel['runs']} runs of "
            f"{len(panel['domains'])} domains, {panel['phases']} phase(s), metric "
            f"{html.escape(panel['metric'])}</h3>",
            f"<p>From {html.escape(panel['source'])}.</p>",
            _scores_table(panel),
            f'<div id="{key}" class="chart"></div>',
            "<p>The five runs the chosen regressor ranks best (out of fold), with their truth:</p>",
            _ranked_table(ranked, panel["best"]),
            f"<p>Proposed mixture ({html.escape(panel['best'])}): predicted "
            f"{fmt.number(proposal['predicted'])} (fold models "
            f"{fmt.number(proposal['interval'][0])} to {fmt.number(proposal['interval'][1])}); "
            "best run measured "
            f"{fmt.number(proposal['best_run_metric'])} ({html.escape(proposal['best_run'])}).</p>",
            _constraints_text(panel.get("constraints")),
            _proposal_table(proposal, (panel.get("constraints") or {}).get("natural")),
            *_next_table(panel.get("next") or [], panel["best"]),
        ]
        charts[key] = _chart(predictions, panel["best"], panel["metric"])
    first = summary["panels"][0][0]
    text = PANEL_TEXT.format(folds=first["folds"], top=first["proposal"].get("top", 100),
                             candidates=first["proposal"]["candidates"])  # fmt: skip
    return "\n".join([f"<p>{text}</p>", *parts]), charts
