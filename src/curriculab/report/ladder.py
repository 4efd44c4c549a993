"""The report's "Scale ladder" section (curriculab.ladder): the check at the target scale, the
mixture optimum against scale for every domain, the fits behind it, and the best end window
against scale."""

from __future__ import annotations

import html
from typing import Any

import altair as alt
import polars as pl

from curriculab.ladder.plan import TARGET
from curriculab.report import fmt
from curriculab.report.chart_base import readable, records
from curriculab.report.sections import table
from curriculab.report.words import Words

LADDER_TEXT = """The ladder trains every scale ({scales}) with the same design: a base mixture
({base}) and, per domain, that domain's amount scaled by {levels} with the others fixed (mixture
runs), and the end window (D1 upsampled by a factor in the final part of training, D1's total
held) at {windows} of training with factor {factor}, and at factors {factors} with window
{window} (ordering runs); ratio {ratio}, learning-rate arm {arm}, every seed ({seeds}).
{repetition} Per scale and domain the
{objective} is fitted with f(x) = k (x + a)^-b + c in the domain's amount x (least squares over
every level and seed), and the optimum under the budget minimises the sum of the fits; its 95%
interval is the delta method on the fits' covariance, or a parametric bootstrap where that
cannot hold (both treat the cells as independent). An optimum outside the amounts its domain
was trained at is the power law's extrapolation and is flagged. Two rules predict the optimum
at the target scale ({target} tokens), each domain's optimal amount log-linear in the budget:
AutoScale's, through the last two scales as fitted (a weight below 0.001 taken as 0.001,
flagged), and a least-squares line through every scale, which takes a flagged optimum at the
bound it passed (censored). Their 95% intervals add the line's lack of fit (its residuals beyond
what the seeds explain, on {law_df}: the scales less two, times the domains less
one) to the seeds' shared quirks (each seed's own optimum at every scale: a seed shares its
initialisation and D1 subsample across all its cells, and the base run sits in every domain's
fit), with t quantiles. The check trains the target scale with both predictions, the natural
mixture, uniform weights and the smallest scale's optimum unchanged, each as it is (a predicted
mixture needing more than the cap repeats data, and is flagged), and compares them paired by
seed (Holm over the six comparisons)."""


def _degrees(df: int) -> str:
    return f"{df} degree{'' if df == 1 else 's'} of freedom"


def _epochs(value: float) -> str:
    return f"{value:g} epoch" + ("" if value == 1 else "s")


def _repetition(cap: float | None) -> str:
    if cap is None:
        return "Cells may repeat data (ladder.max_epochs null); the table of epochs gives each."
    return (
        "No cell of a scale, and neither the natural nor the uniform mixture at the target, "
        f"takes more than {_epochs(cap)} of any domain's train blocks (ladder.max_epochs, "
        "checked when their streams are built; the table of epochs gives every cell's)."
    )


RULES = {"all": "least squares, every scale", "autoscale": "AutoScale, last two scales"}


def _mixture(weights: dict[str, float]) -> str:
    return ", ".join(f"{d} {w:.2f}" for d, w in weights.items())


def check_sentences(summary: dict[str, Any]) -> str:
    """The check's verdict: did each predicted mixture beat the alternatives?"""
    tests = summary["check_tests"]
    items = []
    for rule in RULES:
        mine = [t for t in tests if t["predicted"] == f"predicted_{rule}"]
        better = [t["against"] for t in mine if t["verdict"] == "prediction better"]
        worse = [t["against"] for t in mine if t["verdict"] == "prediction worse"]
        if len(better) == len(mine):
            call = "beat every alternative"
        elif worse:
            call = f"was worse than {', '.join(worse)}"
        else:
            missed = [t["against"] for t in mine if t["against"] not in better]
            call = "did not beat " + ", ".join(missed)
        diffs = "; ".join(
            f"against {t['against']} "
            f"{fmt.interval(t['estimate'], t['ci_low'], t['ci_high'])} nats/token "
            f"(Holm p = {fmt.number(t['p_holm'])}; sign-flip, Holm "
            f"{fmt.number(t.get('p_signflip_holm'))})"
            for t in mine
        )
        items.append(
            f"<li>Predicted mixture ({html.escape(RULES[rule])}): <b>{call}</b> at the target "
            f"scale. Paired differences (prediction minus alternative, 95% t-interval): "
            f"{html.escape(diffs)}.</li>"
        )
    return "<ul>" + "".join(items) + "</ul>"


def _check_table(summary: dict[str, Any]) -> str:
    means = pl.DataFrame(summary["check_means"]).with_columns(
        pl.col("mixture").replace_strict(
            {k: _mixture(v) for k, v in summary["check"].items()}, default=""
        ).alias("weights"),
        pl.struct("objective", "ci_low", "ci_high")
        .map_elements(lambda r: fmt.interval(*r.values()), return_dtype=pl.String)
        .alias("measured"),
    )  # fmt: skip
    return table(means, {"mixture": "mixture", "weights": "weights", "measured":
                         "objective [95% CI]", "seeds": "seeds"})  # fmt: skip


def _notes(row: dict[str, Any]) -> str:
    """A prediction's flags, in words."""
    notes = []
    if row["inputs_outside"]:
        how = "censored" if row["rule"] == "all" else "used as fitted"
        notes.append(f"optima outside the levels at {row['inputs_outside']} of its scales ({how})")
    if row["floored"]:
        notes.append(f"floored at 0.001 at {row['floored']} of its scales")
    if row["beyond_levels"]:
        notes.append("beyond the levels measured")
    if row.get("over_cap"):
        notes.append(f"needs {row['epochs']:.2f} epochs")
    if not row["law_df"]:
        notes.append("law taken as exact (two scales)")
    return "; ".join(notes) or "–"


def _optima_table(summary: dict[str, Any]) -> str:
    optima = pl.DataFrame(summary["optima"]).with_columns(
        pl.struct("weight", "ci_low", "ci_high")
        .map_elements(lambda r: fmt.interval(*r.values()), return_dtype=pl.String)
        .alias("optimum"),
        pl.struct("low", "high")
        .map_elements(lambda r: f"{r['low']:.3f}–{r['high']:.3f}", return_dtype=pl.String)
        .alias("measured"),
        pl.col("outside").fill_null("–").alias("notes"),
        (pl.col("signal") / pl.col("residual_sd")).round(1).alias("signal_to_noise"),
    )
    predicted = pl.DataFrame(summary["predictions"]).with_columns(
        pl.concat_str(pl.lit("target: "), pl.col("rule")).alias("scale"),
        pl.struct("weight", "ci_low", "ci_high")
        .map_elements(lambda r: fmt.interval(*r.values()), return_dtype=pl.String)
        .alias("optimum"),
        pl.lit("–").alias("measured"),
        pl.struct(pl.all()).map_elements(_notes, return_dtype=pl.String).alias("notes"),
        pl.lit(None, pl.Float64).alias("signal_to_noise"),
        pl.lit("law + seeds").alias("method"),
    )
    columns = ["scale", "tokens", "domain", "optimum", "method", "measured", "notes",
               "signal_to_noise"]  # fmt: skip
    shown = pl.concat([optima.select(columns), predicted.select(columns)], how="vertical_relaxed")
    return table(shown, {"scale": "scale", "tokens": "tokens", "domain": "domain",
                         "optimum": "optimal weight [95% interval]", "method": "interval",
                         "measured": "amounts trained", "notes": "outside / flags",
                         "signal_to_noise": "fitted drop / residual sd"})  # fmt: skip


def _epochs_table(summary: dict[str, Any]) -> str:
    """Per scale, the most epochs of every domain any of its runs takes; per check mixture,
    its own; a star where that is more than ladder.max_epochs."""
    most: dict[str, dict[str, tuple[float, bool]]] = {}
    for e in summary["epochs"]:
        row = e["scale"] if e["scale"] != TARGET else f"target: {e['run']}"
        before = most.setdefault(row, {}).get(e["domain"], (0.0, False))
        most[row][e["domain"]] = (max(before[0], e["epochs"]), before[1] or e["over_cap"])
    domains = list(next(iter(most.values())))
    shown = pl.DataFrame([
        {"row": row, **{d: f"{v[d][0]:.2f}" + (" *" if v[d][1] else "") for d in domains}}
        for row, v in most.items()
    ])  # fmt: skip
    return table(shown, {"row": "scale (most of its runs) or check mixture",
                         **{d: d for d in domains}})  # fmt: skip


def flag_sentences(summary: dict[str, Any]) -> str:
    """What the reader must know before trusting a number: optima outside the amounts trained,
    and predictions that were censored, floored, lie beyond the levels or repeat data."""
    items = []
    for o in summary["optima"]:
        if o["outside"]:
            items.append(
                f"{o['domain']}'s optimum at {o['scale']} ({o['weight']:.3f}) lies {o['outside']} "
                f"the amounts it was trained at ({o['low']:.3f} to {o['high']:.3f}): the power "
                "law's extrapolation. The all-scales line takes it at "
                f"{o['low'] if o['outside'] == 'below' else o['high']:.3f}."
            )
    for p in summary["predictions"]:
        notes = _notes(p)
        if notes != "–":
            items.append(f"The prediction ({RULES[p['rule']]}) of {p['domain']}: {notes}.")
    cap = summary["ladder"].get("max_epochs")
    if any(p.get("over_cap") for p in summary["predictions"]):
        items.append(
            f"A predicted mixture that needs more than {_epochs(cap)} of a domain is trained as "
            "predicted, repeating data (capping it would check another mixture): its check "
            "compares the mixture and the repetition together."
        )
    if not items:
        return (
            "<p>No optimum lies outside the amounts trained, no prediction was censored or "
            "floored, and no mixture repeats data.</p>"
        )
    return "<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>"


def _backtest_law(summary: dict[str, Any]) -> str:
    if summary["backtest"][0]["law_df"]:
        return "Its intervals carry the lack of fit of the scales below the top."
    return (
        "With two scales below the top, no residual is left to measure the law's lack of fit: "
        "the mixture backtest's intervals carry the seeds alone, taking the law as exact, so a "
        "'no' there says the law bent between the scales."
    )


def _backtest(summary: dict[str, Any]) -> str:
    """The top scale predicted from the ones below it, against its own fit."""
    rows = []
    for t in summary["backtest"]:
        inside = t["ci_low"] - 1e-9 <= t["fitted"] <= t["ci_high"] + 1e-9
        rows.append({
            "rule": t["rule"], "domain": t["domain"],
            "predicted": fmt.interval(t["weight"], t["ci_low"], t["ci_high"]),
            "fitted": fmt.interval(t["fitted"], t["fitted_low"], t["fitted_high"]),
            "inside": "yes" if inside else "no",
        })  # fmt: skip
    for t in summary["order_predictions"]:
        if t["kind"] == "backtest":
            rows.append({
                "rule": "order (least squares)", "domain": t["parameter"],
                "predicted": fmt.interval(t["best"], t["ci_low"], t["ci_high"]),
                "fitted": fmt.interval(t["fitted"], None, None),
                "inside": "yes" if t["ci_low"] <= t["fitted"] <= t["ci_high"] else "no",
            })  # fmt: skip
    return table(pl.DataFrame(rows), {"rule": "rule", "domain": "domain or parameter",
                                      "predicted": "predicted [95% interval]", "fitted":
                                      "fitted at the top scale", "inside": "inside"})  # fmt: skip


def _orders_table(summary: dict[str, Any]) -> str:
    orders = pl.DataFrame(summary["orders"])
    target = [
        {"scale": "target (predicted)" + (", beyond the levels" if t["outside_levels"] else ""),
         "parameter": t["parameter"], "best": t["best"], "ci_low": t["ci_low"],
         "ci_high": t["ci_high"], "at_edge": None}
        for t in summary["order_predictions"] if t["kind"] == "target"
    ]  # fmt: skip
    shown = pl.concat(
        [orders.select("scale", "parameter", "best", "ci_low", "ci_high", "at_edge"),
         pl.DataFrame(target, schema_overrides={"at_edge": pl.Boolean})],
        how="vertical_relaxed",
    ).with_columns(
        pl.struct("best", "ci_low", "ci_high")
        .map_elements(lambda r: fmt.interval(*r.values()), return_dtype=pl.String).alias("value"),
        pl.col("at_edge").replace_strict({True: "yes", False: "no"}, default="–"),
    )  # fmt: skip
    return table(shown, {"scale": "scale", "parameter": "parameter", "value":
                         "best value [95% interval]", "at_edge": "at an edge"})  # fmt: skip


def optimum_chart(summary: dict[str, Any]) -> alt.TopLevelMixin:
    """Optimal weight against tokens (log), every domain: fitted per scale, predicted at the
    target by either rule, each with its 95% interval."""
    fitted = pl.DataFrame(summary["optima"]).select(
        "tokens", "domain", "weight", "ci_low", "ci_high", kind=pl.lit("fitted at the scale")
    )
    predicted = pl.DataFrame(summary["predictions"]).select(
        "tokens", "domain", "weight", "ci_low", "ci_high",
        pl.format("predicted: {}", pl.col("rule").replace_strict(RULES)).alias("kind"),
    )  # fmt: skip
    data = pl.concat([fitted, predicted], how="vertical_relaxed")
    base = alt.Chart(records(data))
    x = alt.X("tokens:Q", scale=alt.Scale(type="log"), title="training tokens (log)")
    color = alt.Color("domain:N", title="domain")
    chart = (
        base.transform_filter("datum.kind == 'fitted at the scale'")
        .mark_line(opacity=0.5)
        .encode(x=x, y="weight:Q", color=color, detail="domain:N")
        + base.mark_errorbar().encode(x=x, y=alt.Y("ci_low:Q", title="optimal weight"),
                                      y2="ci_high:Q", color=color)
        + base.mark_point(filled=True, size=70).encode(
            x=x, y="weight:Q", color=color, shape=alt.Shape("kind:N", title=""),
            tooltip=["domain:N", "kind:N", "tokens:Q", alt.Tooltip("weight:Q", format=".3f")],
        )
    )  # fmt: skip
    return readable(chart.properties(width=460, height=300))


def fits_chart(summary: dict[str, Any], kind: str) -> alt.TopLevelMixin:
    """The measured points (mean over seeds, 95% CI) and the fits through them, per scale:
    `kind` mixture (objective against a domain's amount) or order (against the window or the
    factor)."""
    if kind == "mixture":
        points = pl.DataFrame(summary["points"]).rename({"domain": "series", "amount": "x"})
        title, facet = "amount (fraction of the scale's budget, log)", "scale"
    else:
        points = pl.DataFrame(summary["order_points"]).rename({"parameter": "series", "value": "x"})
        title, facet = "window or factor (log)", "series"
    curves = (
        pl.DataFrame(summary["curves"])
        .filter(pl.col("kind") == kind)
        .select("scale", "series", "x", objective="y", role=pl.lit("fit"))
    )
    points = points.select(
        "scale", "series", "x", "objective", "ci_low", "ci_high", "seeds", role=pl.lit("measured")
    )
    data = pl.concat([curves, points], how="diagonal_relaxed")
    colour = alt.Color(f"{'series' if kind == 'mixture' else 'scale'}:N")
    x = alt.X("x:Q", scale=alt.Scale(type="log"), title=title)
    y = alt.Y("objective:Q", scale=alt.Scale(zero=False), title="objective (nats/token)")
    base = alt.Chart(records(data))
    fit, measured = "datum.role == 'fit'", "datum.role == 'measured'"
    layer = alt.layer(
        base.transform_filter(fit).mark_line().encode(x=x, y=y, color=colour, detail="series:N"),
        base.transform_filter(measured).mark_errorbar().encode(
            x=x, y=alt.Y("ci_low:Q", title="objective (nats/token)"), y2="ci_high:Q",
            color=colour),
        base.transform_filter(measured).mark_point(filled=True).encode(
            x=x, y=y, color=colour,
            tooltip=["series:N", "scale:N", alt.Tooltip("x:Q", format=".3f"),
                     alt.Tooltip("objective:Q", format=".4f"), "seeds:Q"]),
    )  # fmt: skip
    chart = layer.properties(width=260, height=220).facet(
        column=alt.Column(f"{facet}:N", title=None)
    ).resolve_scale(x="independent")  # fmt: skip
    return readable(chart)


def ladder_section(
    summary: dict[str, Any], words: Words, study: dict[str, Any]
) -> tuple[str, dict[str, alt.TopLevelMixin]]:
    """The section's HTML and its charts (div id -> chart)."""
    ladder = summary["ladder"]
    scales = ", ".join(
        f"{s['name']} {s['tokens']:,} tokens ({s['preset']})" for s in ladder["scales"]
    )
    text = LADDER_TEXT.format(
        scales=scales, base=ladder["base"], levels=", ".join(f"{v:.3g}" for v in ladder["levels"]),
        windows=", ".join(f"{v:g}" for v in ladder["windows"]), factor=f"{ladder['factor']:g}",
        factors=", ".join(f"{v:g}" for v in ladder["factors"]), window=f"{ladder['window']:g}",
        ratio=ladder["ratio"], arm=ladder["arm"], seeds=len(study.get("seeds", [])),
        objective=words.measure, target=f"{ladder['target']['tokens']:,}",
        repetition=_repetition(ladder.get("max_epochs")),
        law_df=_degrees(summary["predictions"][0]["law_df"]),
    )  # fmt: skip
    charts = {
        "chart-ladder-optimum": optimum_chart(summary),
        "chart-ladder-mixture": fits_chart(summary, "mixture"),
        "chart-ladder-order": fits_chart(summary, "order"),
    }
    captions = {
        "chart-ladder-optimum": "Optimal weight of every domain against training tokens: fitted "
        "at each scale and predicted at the target by both rules (95% intervals).",
        "chart-ladder-mixture": "The mixture fits: the objective against each domain's amount "
        "(points: mean over seeds with 95% t-intervals; lines: the fitted power laws), per scale.",
        "chart-ladder-order": "The ordering fits: the objective against the end window's length "
        "(factor held) and against the factor (window held), per scale, with the quadratics in "
        "the log.",
    }

    def figure(key: str) -> str:
        return (
            f'<p class="caption" id="caption-{key}">{html.escape(captions[key])}</p>'
            f'<div class="chart" id="{key}" aria-describedby="caption-{key}"></div>'
        )

    body = (
        f"<p>{html.escape(text, quote=False)}</p>"
        f"<p><b>The check at the target scale</b> ({ladder['target']['tokens']:,} tokens, "
        f"{html.escape(ladder['target']['preset'])}):</p>{check_sentences(summary)}"
        f"{_check_table(summary)}{figure('chart-ladder-optimum')}"
        f"<p><b>Flags</b>:</p>{flag_sentences(summary)}"
        f"<p>Optimal weights per scale and predicted at the target. Interval <i>delta</i>: the "
        f"delta method on the fits' covariance; <i>bootstrap</i>: a parametric bootstrap of "
        f"the fits (200 refits; used where the optimum sits on an edge of the simplex or a fit "
        f"on a bound, where the covariance says little); <i>law + seeds</i>: the prediction's "
        f"t interval from the line's lack of fit and the seeds' shared quirks. <i>Amounts "
        f"trained</i>: the least and most of the domain its runs had (in units of the scale's "
        f"budget); an optimum outside them is flagged. A domain whose fitted drop over its "
        f"levels is below its residual sd (ratio under 1) is not identified at that scale.</p>"
        f"{_optima_table(summary)}"
        f"<p>Backtest: the top scale predicted from the scales below it, against its own fit "
        f"(is the ladder's extrapolation trustworthy one step up?). {_backtest_law(summary)}</p>"
        f"{_backtest(summary)}"
        f"<p>Epochs: the passes over each domain's train blocks (its pool at the ladder's "
        f"ratio) that a scale's runs take at most, and each check mixture at the target; a star "
        f"marks more than ladder.max_epochs.</p>"
        f"{_epochs_table(summary)}"
        f"{figure('chart-ladder-mixture')}"
        f"<p>The best end window per scale, and one step up (an edge means the best value lies "
        f"at or beyond the levels tried):</p>{_orders_table(summary)}"
        f"{figure('chart-ladder-order')}"
    )
    return body, charts
