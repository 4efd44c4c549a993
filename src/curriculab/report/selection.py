"""The report's "Selection" section (curriculab.selection): what each selection chose, how far it
lies from the target, and which selection and placement trained the best model, paired by
seed."""

from __future__ import annotations

import html
from typing import Any

import altair as alt
import polars as pl

from curriculab.report import fmt
from curriculab.report.chart_base import readable, records
from curriculab.report.sections import table

SELECTION_TEXT = """Each selection chooses documents from the train split of {pool} toward
the train split of {target} (never a test split), in one embedding ({embedding}):
<b>random</b> draws them (the control); <b>similarity</b> takes those closest to the target's
embedding centroid (cosine); <b>ot</b> (GOT-D, Kang et al., ICLR 2024) solves entropic optimal
transport between the pool and a sample of {points} target documents (POT's Sinkhorn, epsilon
{epsilon}) and takes the documents with the most negative calibrated dual potential: those whose
extra weight moves the pool's distribution most toward the target's. A cell that trains on a
selection takes its documents in place of the whole pool; every cell is evaluated on the same
test splits. The objective is {objective}. Comparisons are paired by seed; every row below is
one test of one Holm family (95%). {draws}"""

DRAWS_TEXT = """A random set is drawn anew for every training seed ({seeds}), and a cell of seed s
trains on draw s: each seed's comparison with random pairs a selection with that seed's own draw,
so the intervals include the spread over draws and a verdict does not rest on one subset. In the
table of means, a random set's sd over seeds is that spread (draws and seeds together); a fixed
set's sd is the seeds' alone."""

KINDS = {
    "vs random": "{set} minus {against} at {placement}",
    "placement": "{placement} with {set}",
    "interaction": "({placement}) with {set} minus the same with {against}",
}


def _verdicts(tests: list[dict[str, Any]]) -> str:
    items = []
    for t in tests:
        what = KINDS[t["kind"]].format(**t)
        items.append(
            f"<li>{html.escape(t['kind'])}: {html.escape(what)}: "
            f"{fmt.interval(t['estimate'], t['ci_low'], t['ci_high'])} nats/token, "
            f"Holm p = {fmt.number(t['p_holm'])}; "
            f"sign-flip p = {fmt.number(t.get('p_signflip'))}, "
            f"Holm {fmt.number(t.get('p_signflip_holm'))}: <b>{html.escape(t['verdict'])}</b>"
            f" ({t['seeds']} seeds, ratio {html.escape(str(t['ratio']))}, "
            f"arm {html.escape(str(t['arm']))})</li>"
        )
    return "<ul>" + "".join(items) + "</ul>"


def _spread(values: list[float], number=fmt.number) -> str:
    """ "mean (min–max)" of several draws; the value alone for one."""
    if len(values) == 1:
        return number(values[0])
    return f"{number(sum(values) / len(values))} ({number(min(values))}–{number(max(values))})"


def _means_table(means: pl.DataFrame, pool: str) -> str:
    shown = means.sort("set", "placement").with_columns(
        pl.struct("objective", "ci_low", "ci_high")
        .map_elements(lambda r: fmt.interval(*r.values()), return_dtype=pl.String)
        .alias("measured")
    )
    return table(
        shown,
        {
            "ratio": "ratio",
            "arm": "arm",
            "set": "selection",
            "placement": "placement",
            "measured": "objective [95% CI]",
            "pool_loss": f"{pool} test loss (mean)",
            "sd": "sd over seeds",
            "seeds": "seeds",
            "draws": "subsets drawn",
        },
        {"pool_loss": fmt.loss, "sd": fmt.loss},
    )


def _records_table(records_: list[dict[str, Any]], pool_cost: float) -> str:
    """One row per set; a random set's draws as mean (min–max) over draws."""
    by_set: dict[str, list[dict[str, Any]]] = {}
    for r in records_:
        by_set.setdefault(r["set"], []).append(r)
    rows = [
        {
            "set": name,
            "method": rs[0]["method"],
            "size": rs[0]["size"],
            "draws": len(rs),
            "docs": _spread([r["chosen_docs"] for r in rs], lambda v: f"{v:,.0f}"),
            "tokens": _spread([r["chosen_tokens"] for r in rs], fmt.tokens),
            "cost": _spread([r["transport_cost"] for r in rs]),
            "pool_cost": pool_cost,
            "cosine": _spread([r["centroid_cosine"] for r in rs]),
            "seconds": sum(r["seconds"] for r in rs),
            "first": "; ".join(rs[0]["top_titles"][:5]),
        }
        for name, rs in by_set.items()
    ]
    return table(
        pl.DataFrame(rows),
        {
            "set": "selection",
            "method": "method",
            "size": "asked",
            "draws": "draws",
            "docs": "documents",
            "tokens": "train tokens",
            "cost": "OT cost to target",
            "pool_cost": "whole pool's OT cost",
            "cosine": "mean cosine to centroid",
            "seconds": "seconds",
            "first": "first five chosen (titles)",
        },
    )


def _chart(means: pl.DataFrame) -> alt.TopLevelMixin:
    base = alt.Chart(records(means)).encode(
        x=alt.X("set:N", title="selection"),
        color=alt.Color("placement:N", title="placement"),
        xOffset="placement:N",
    )
    points = base.mark_point(filled=True, size=60).encode(
        y=alt.Y("objective:Q", title="objective (nats/token)", scale=alt.Scale(zero=False)),
        tooltip=["set:N", "placement:N", alt.Tooltip("objective:Q", format=".4f"), "seeds:Q"],
    )
    bars = base.mark_rule().encode(y="ci_low:Q", y2="ci_high:Q")
    return readable((bars + points).properties(width=360, height=220))


def _draws_text(draws: dict[str, list[int]]) -> str:
    seeds = sorted({s for v in draws.values() for s in v})
    return DRAWS_TEXT.format(seeds=", ".join(map(str, seeds))) if seeds else ""


def selection_section(summary: dict[str, Any]) -> tuple[str, dict[str, alt.TopLevelMixin]]:
    """The section's HTML and its chart (keyed by the element id it is drawn into)."""
    text = SELECTION_TEXT.format(
        pool=html.escape(summary["pool"]),
        target=html.escape(summary["target"]),
        embedding=html.escape(summary["embedding"]),
        points=summary["ot"]["target_points"],
        epsilon=summary["ot"]["epsilon"],
        objective=html.escape(summary["objective"]),
        draws=_draws_text(summary.get("draws") or {}),
    )
    means = pl.DataFrame(summary["means"])
    overlaps = pl.DataFrame(summary["overlaps"]) if summary["overlaps"] else None
    parts = [
        f"<p>{text}</p>",
        "<h3>Which selection and placement trained the best model</h3>",
        _verdicts(summary["tests"]) if summary["tests"] else "<p>No paired comparison.</p>",
        '<div id="chart-selection" class="chart"></div>',
        _means_table(means, summary["pool"]),
        "<h3>What each selection chose</h3>",
        "<p>OT cost: the entropic transport cost (epsilon as above) between a sample of the "
        "chosen documents and the target sample, in the embedding; lower lies closer to the "
        "target. The whole pool's is given for scale. A random set's draws are given as mean "
        "(min–max) over draws.</p>",
        _records_table(summary["records"], summary["pool_transport_cost"]),
    ]
    if overlaps is not None:
        parts += [
            "<p>Overlap of the chosen documents (Jaccard), over every pair of draws (a random "
            "set against itself: two of its draws):</p>",
            table(
                overlaps,
                {
                    "a": "selection",
                    "b": "selection",
                    "pairs": "pairs of draws",
                    "jaccard": "Jaccard (mean)",
                    "jaccard_min": "min",
                    "jaccard_max": "max",
                },
            ),
        ]
    return "\n".join(parts), {"chart-selection": _chart(means)}
