"""The report's "Design loop" section (curriculab.design): every round's proposals, the surface
fitted to all measured points, and the recommended curriculum with its predicted and measured
objective."""

from __future__ import annotations

import html
import math
from typing import Any

import altair as alt
import polars as pl

from curriculab.analysis.statistics import Z95
from curriculab.report import fmt
from curriculab.report.chart_base import readable, records
from curriculab.report.sections import table
from curriculab.report.words import Words

DESIGN_TEXT = """The design loop varies {params} of schedule {base} ({family}) inside the box
{box}, at ratio {ratio}, learning-rate arm {arm}, with every seed of the study ({seeds}) at every
point, so points are compared paired by seed. Round 0 is a scrambled Sobol design; each later
round fits a Gaussian process (scikit-learn: Matern 5/2 with a length scale per parameter and a
white-noise term) to the seed mean of the {objective} at every point measured so far and
proposes its predicted optimum, then points of highest expected improvement; the last round is
one point, the predicted optimum of every earlier measurement, trained to check the prediction.
Points a budget cannot fill (fixed_data has only so much {target}) are never proposed. Design
cells are chosen by looking at results, so they are kept out of the verdicts above.
Expected improvement uses the posterior sd of the objective itself, without the measurement
noise. {fresh}"""

FRESH_TEXT = """The recommendation won because its seeds' measurements looked best, so the same
seeds measure it optimistically (the winner's curse: a seed's initialisation or D1 subsample may
favour a region of the box). It and the baseline are therefore also trained on {n} fresh seeds
({seeds}), with a new initialisation and a new D1 subsample that no fit has seen: that
measurement is the unbiased estimate."""

NO_FRESH_TEXT = """The recommendation is measured only on the seeds that chose it
(design.fresh_seeds is 0), so its measurement may be optimistic (the winner's curse)."""


def _interval(mean: float | None, low: float | None, high: float | None, signed: bool = False):
    """ "2.345 [2.301, 2.389]"; the mean alone without an interval."""
    if mean is None:
        return "–"
    if low is None or high is None or math.isnan(low):
        return fmt.loss(mean, signed)
    return f"{fmt.loss(mean, signed)} [{fmt.loss(low, signed)}, {fmt.loss(high, signed)}]"


def _band(predicted: dict[str, float]) -> tuple[float, float, float]:
    """(mean, low, high) of a 95% predictive interval."""
    mean, sd = predicted["mean"], predicted["sd"]
    return mean, mean - Z95 * sd, mean + Z95 * sd


def _point(point: dict[str, float], names: list[str]) -> str:
    """ "window = 0.464, d1_share = 0.279" in the design's order of parameters."""
    return ", ".join(f"{k} = {fmt.number(point[k])}" for k in names)


def _comparison(rec: dict[str, Any], key: str, what: str, seeds: str = "") -> str:
    diff = rec.get(key)
    if not diff:
        return ""
    sign = "lower" if diff["ci_high"] < 0 else "higher" if diff["ci_low"] > 0 else None
    call = f"significantly {sign}" if sign else "not significantly different"
    return (
        f"<li>Against {what} {html.escape(diff['schedule'])}, paired by seed{seeds}: "
        f"{_interval(diff['mean'], diff['ci_low'], diff['ci_high'], signed=True)} nats/token "
        f"({diff['seeds']} seeds, 95% t-interval): {call}.</li>"
    )


def _measured(measured: dict[str, Any], which: str) -> str:
    return (
        f"<li>Measured on {which}: "
        f"{_interval(measured['mean'], measured['ci_low'], measured['ci_high'])} nats/token "
        f"(mean over {measured['seeds']} seeds, 95% t-interval).</li>"
    )


def _fresh(rec: dict[str, Any]) -> str:
    """The fresh seeds' measurement and comparison (unbiased), and how much the design seeds'
    comparison exceeded it."""
    if not rec.get("fresh"):
        return ""
    out = _measured(rec["fresh"], "fresh seeds (unbiased)")
    out += _comparison(rec, "fresh_versus_baseline", "the baseline", " on the fresh seeds")
    design, fresh = rec.get("versus_baseline"), rec.get("fresh_versus_baseline")
    if design and fresh:
        out += (
            f"<li>Against the baseline, the design seeds' difference minus the fresh seeds': "
            f"{fmt.loss(design['mean'] - fresh['mean'], signed=True)} nats/token (negative: "
            "the design seeds flattered the recommendation; different seeds, so this gap "
            "carries the noise of both).</li>"
        )
    return out


def _recommendation(summary: dict[str, Any], words: Words) -> str:
    rec = summary["recommendation"]
    predicted, measured = rec["predicted"], rec["measured"]
    checked = summary["predictions"]
    return (
        f"<p><b>Recommended curriculum</b> ({html.escape(rec['schedule'])}): "
        f"{html.escape(_point(rec['point'], summary['parameters']))}.</p><ul>"
        f"<li>Predicted before it ran: {_interval(*_band(predicted))} "
        f"nats/token (posterior mean, 95% predictive interval).</li>"
        f"{_measured(measured, 'the design seeds (which chose it)')}"
        f"{_comparison(rec, 'versus_baseline', 'the baseline', ' on the design seeds')}"
        f"{_comparison(rec, 'versus_best_grid', 'the best grid schedule of this design,')}"
        f"{_fresh(rec)}"
        f"<li>Calibration: {checked['inside_95']} of {checked['checked']} surrogate proposals "
        f"measured inside their 95% predictive interval.</li></ul>"
    )  # fmt: skip


def _fit_sentence(fit: dict[str, Any], names: list[str]) -> str:
    """What the final fit found: signal against noise, and the length scales."""
    flat = fit["signal_sd"] < fit["noise_sd"]
    scales = ", ".join(f"{n} {v:.2g}" for n, v in zip(names, fit["length_scales"], strict=True))
    verdict = (
        "The surface is flat within noise: the objective varies less over the box than between "
        "seeds, so the recommendation is no better supported than any measured point."
        if flat
        else "The objective varies over the box by more than the seeds do."
    )
    return (
        f"<p>Final fit: the objective's variation over the box has sd {fmt.loss(fit['signal_sd'])} "
        f"nats/token against {fmt.loss(fit['noise_sd'])} left by the seeds; length scales "
        f"(fraction of each range) {html.escape(scales)}. {verdict}</p>"
        f"<p>Fitted kernel: <code>{html.escape(fit['kernel'])}</code></p>"
    )


def _points_table(points: pl.DataFrame, names: list[str]) -> str:
    shown = points.sort("round", "schedule").with_columns(
        pl.struct("predicted", "predicted_low", "predicted_high")
        .map_elements(lambda r: _interval(*r.values()), return_dtype=pl.String)
        .alias("predicted_text"),
        pl.struct("objective", "ci_low", "ci_high")
        .map_elements(lambda r: _interval(*r.values()), return_dtype=pl.String)
        .alias("measured_text"),
        pl.when(pl.col("round") < 0).then(pl.lit("grid")).otherwise(pl.col("round").cast(pl.String))
        .alias("round_text"),
    )  # fmt: skip
    columns = {"round_text": "round", "schedule": "schedule", "role": "role"}
    columns |= {n: n for n in names}
    columns |= {"predicted_text": "predicted [95% PI]", "measured_text": "measured [95% CI]"}
    if "fresh" in points.columns and points["fresh"].is_not_null().any():
        shown = shown.with_columns(
            pl.struct("fresh", "fresh_low", "fresh_high")
            .map_elements(lambda r: _interval(*r.values()), return_dtype=pl.String)
            .alias("fresh_text")
        )
        columns["measured_text"] = "measured, design seeds [95% CI]"
        columns["fresh_text"] = "measured, fresh seeds (unbiased) [95% CI]"
    return table(shown, columns)


def _with_edges(surface: pl.DataFrame, shown: list[str]) -> pl.DataFrame:
    """The surface's grid points as cells: x1..x2 and y1..y2 around each point."""
    edges = []
    for name, edge in zip(shown, ("x", "y"), strict=True):
        half = float(surface[name].unique().sort().diff().drop_nulls().min()) * 0.51  # overlap
        edges += [(pl.col(name) - half).alias(f"{edge}1"), (pl.col(name) + half).alias(f"{edge}2")]
    return surface.with_columns(edges)


def surface_chart(surface: pl.DataFrame, points: pl.DataFrame, summary: dict[str, Any]):
    """The fitted objective over the box (a heat map over two parameters, a line with its 95%
    band over one), grey where no schedule can be built, every measured point marked by round."""
    shown = summary["shown"]
    marks = points.with_columns(
        pl.when(pl.col("round") < 0)
        .then(pl.lit("grid"))
        .otherwise(pl.format("round {}", pl.col("round")))
        .alias("round_label")
    )
    tips = [
        *(alt.Tooltip(f"{n}:Q", format=".3f") for n in shown),
        alt.Tooltip("schedule:N"),
        alt.Tooltip("role:N"),
        alt.Tooltip("objective:Q", format=".3f"),
    ]
    dots = alt.Chart(records(marks)).mark_point(filled=True, size=90, stroke="black")
    shape = alt.Shape("round_label:N", title="measured")
    bounds = summary["design"]["bounds"]
    axis = {n: alt.Scale(domain=list(bounds[n]), nice=False, zero=False) for n in shown}
    x = alt.X(f"{shown[0]}:Q", title=shown[0], scale=axis[shown[0]])
    if len(shown) == 1:
        band = surface.with_columns(
            low=pl.col("mean") - Z95 * pl.col("sd"), high=pl.col("mean") + Z95 * pl.col("sd")
        )
        base = alt.Chart(records(band))
        chart = (
            base.mark_area(opacity=0.2).encode(x=x, y="low:Q", y2="high:Q")
            + base.mark_line().encode(x=x, y=alt.Y("mean:Q", title="objective (nats/token)"))
            + dots.encode(x=x, y="objective:Q", shape=shape, tooltip=tips)
        )
        return readable(chart.properties(width=480, height=300))
    color = alt.Color("mean:Q", title="predicted objective", scale=alt.Scale(scheme="viridis"))
    cells = (
        alt.Chart(records(_with_edges(surface, shown)))
        .mark_rect(clip=True)
        .encode(
            x=alt.X("x1:Q", title=shown[0], scale=axis[shown[0]]),
            x2="x2:Q",
            y=alt.Y("y1:Q", title=shown[1], scale=axis[shown[1]]),
            y2="y2:Q",
            color=alt.condition("datum.feasible", color, alt.value("#ddd")),
            tooltip=[
                *(alt.Tooltip(f"{n}:Q", format=".3f") for n in shown),
                alt.Tooltip("mean:Q", format=".3f", title="predicted"),
                alt.Tooltip("sd:Q", format=".3f", title="sd of the fitted objective"),
                alt.Tooltip("feasible:N"),
            ],
        )
    )
    y = alt.Y(f"{shown[1]}:Q", title=shown[1], scale=axis[shown[1]])
    chart = cells + dots.encode(x=x, y=y, shape=shape, color=alt.value("white"), tooltip=tips)
    return readable(chart.properties(width=480, height=360))


def _fresh_text(seeds: list[int]) -> str:
    if not seeds:
        return NO_FRESH_TEXT
    return FRESH_TEXT.format(n=len(seeds), seeds=", ".join(map(str, seeds)))


def design_section(
    points: pl.DataFrame, surface: pl.DataFrame, summary: dict[str, Any], words: Words, study
) -> tuple[str, dict[str, alt.TopLevelMixin]]:
    """The section's HTML and its chart, keyed by the element it is drawn into (chart-design)."""
    design = summary["design"]
    bounds = design["bounds"]
    box = ", ".join(f"{n} in [{bounds[n][0]:g}, {bounds[n][1]:g}]" for n in summary["parameters"])
    text = DESIGN_TEXT.format(
        params=" and ".join(summary["parameters"]), base=design["base"],
        family=design["spec"]["family"], box=box, ratio=design["ratio"], arm=design["arm"],
        seeds=len(study.get("seeds", [])), objective=words.measure,
        target=study["target_domain"], fresh=_fresh_text(design.get("fresh_seeds") or []),
    )  # fmt: skip
    held = [n for n in summary["parameters"] if n not in summary["shown"]]
    caption = (
        "The surface fitted to every measured point: the predicted objective (darker is lower); "
        "grey where the budget cannot build the schedule; markers are the measured points, by "
        "round" + (f"; {', '.join(held)} held at the recommended point" if held else "") + "."
    )
    body = (
        f"<p>{html.escape(text, quote=False)}</p>"
        f"{_recommendation(summary, words)}"
        f'<p class="caption" id="caption-design">{html.escape(caption)}</p>'
        f'<div class="chart" id="chart-design" aria-describedby="caption-design"></div>'
        f"<p>Every measured point, by round (objective in nats/token; predictions were made "
        f"before the point ran):</p>{_points_table(points, summary['parameters'])}"
        f"{_fit_sentence(summary['fit'], summary['parameters'])}"
    )
    return body, {"chart-design": surface_chart(surface, points, summary)}
