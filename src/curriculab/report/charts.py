"""Altair chart builders for the report: learning curves, final test loss per cell, where D1
sits in each stream, and the paired comparisons against the baseline (heatmap, H2).

The shared parts (inline data, fonts, panels) are in report.chart_base; the charts of a study
read domain by domain (one strip per domain) in report.domain_charts. Titles and axes that name
the ratio or the measured loss take their words from report.words (default: D1 and D2).
"""

from __future__ import annotations

import altair as alt
import polars as pl

from curriculab.analysis.statistics import t_quantile
from curriculab.report.chart_base import (
    LOSS_TITLE,
    STRIP_WIDTH,
    TOKENS_TITLE,
    faceted,
    loss_tooltips,
    lr_line,
    panel_label,
    readable,
    records,
    schedule_scale,
    step_rates,
)
from curriculab.report.fmt import VEGA_LOSS, VEGA_PERCENT, loss, vega_tokens
from curriculab.report.words import D1_WORDS, Words


def _mean_curves(curves: pl.DataFrame, is_target: bool) -> pl.DataFrame:
    """Per (ratio, schedule, arm, step): mean over seeds of the test loss and its 95% t-interval
    (loss_low, loss_high; null with a single seed), and the mean unigram reference.

    Several non-target domains are first pooled per seed, weighted by their test-token counts
    (column n_tokens) when curves carries it, else equally.
    """
    chosen = curves.filter(pl.col("is_target") == is_target)
    if chosen.is_empty():
        side = "target" if is_target else "non-target"
        raise ValueError(f"learning_curve_chart: curves has no {side} rows")
    weight = pl.col("n_tokens").cast(pl.Float64) if "n_tokens" in chosen.columns else pl.lit(1.0)
    if "unigram_loss" not in chosen.columns:
        chosen = chosen.with_columns(pl.lit(None, pl.Float64).alias("unigram_loss"))
    if "arm" not in chosen.columns:
        chosen = chosen.with_columns(pl.lit("-").alias("arm"))
    pooled = (pl.col("weight") / pl.col("weight").sum()).alias("w")
    per_seed = (
        chosen.with_columns(weight.alias("weight"))
        .with_columns(pooled.over("ratio", "schedule", "arm", "seed", "step"))
        .group_by("ratio", "ratio_value", "schedule", "arm", "seed", "step")
        .agg(
            pl.col("tokens_seen").first(),
            (pl.col("loss") * pl.col("w")).sum().alias("loss"),
            (pl.col("unigram_loss") * pl.col("w")).sum().alias("unigram_loss"),
        )
    )
    return (
        per_seed.group_by("ratio", "ratio_value", "schedule", "arm", "step")
        .agg(
            pl.col("tokens_seen").mean(),
            pl.col("unigram_loss").mean(),
            pl.col("loss").mean().alias("loss_mean"),
            pl.col("loss").std(ddof=1).alias("loss_std"),
            pl.len().alias("n_seeds"),
        )
        .with_columns(
            (t_quantile(pl.col("n_seeds")) * pl.col("loss_std") / pl.col("n_seeds").sqrt()).alias(
                "half"
            )
        )
        .with_columns(
            (pl.col("loss_mean") - pl.col("half")).alias("loss_low"),
            (pl.col("loss_mean") + pl.col("half")).alias("loss_high"),
        )
        .drop("half")
        .sort("ratio_value", "schedule", "arm", "step")
    )


def learning_curve_chart(
    curves: pl.DataFrame, domain_label: str, is_target: bool, words: Words = D1_WORDS
) -> alt.FacetChart:
    """Test loss (nats/token) against tokens seen, one line per schedule, one panel per ratio
    and learning-rate arm.

    Lines are the mean over seeds; the light band is the 95% t-interval over seeds; the dashed
    line is the unigram reference (a unigram model of the tokens the cells trained on). is_target
    picks the D1 rows (True) or the pooled other domains (False); domain_label names them.
    """
    table = panel_label(_mean_curves(curves, is_target), words.ratio)
    # Opaque line symbols: the legend would otherwise take the faint opacity of the bands.
    legend = alt.Legend(symbolType="stroke", symbolOpacity=1, symbolStrokeWidth=3)
    colour = alt.Color("schedule:N", title="schedule", scale=schedule_scale(table), legend=legend)
    # Token counts as the tables write them (270k, 1.23M), never a raw 269952.
    x = alt.X(
        "tokens_seen:Q", title=TOKENS_TITLE, axis=alt.Axis(labelExpr=vega_tokens("datum.value"))
    )
    band = (
        alt.Chart()
        .mark_area(opacity=0.18)
        .encode(
            x=x,
            y=alt.Y("loss_low:Q", title=LOSS_TITLE),
            y2="loss_high:Q",
            color=colour,
        )
    )
    line = (
        alt.Chart()
        .mark_line(point=alt.OverlayMarkDef(size=18))
        .transform_calculate(tokens_label=vega_tokens("datum.tokens_seen"))
        .encode(
            x=x,
            y=alt.Y("loss_mean:Q", title=LOSS_TITLE, scale=alt.Scale(zero=False)),
            color=colour,
            tooltip=[
                alt.Tooltip("schedule:N"),
                alt.Tooltip("tokens_label:N", title=TOKENS_TITLE),
                alt.Tooltip("loss_mean:Q", title="mean loss (nats/token)", format=VEGA_LOSS),
                alt.Tooltip("n_seeds:Q", title="seeds", format="d"),
            ],
        )
    )
    reference = (
        alt.Chart()
        .mark_rule(strokeDash=[6, 4], strokeWidth=1.5, color="#555")
        .encode(
            # Grey, one rule per schedule: the schedules' references nearly coincide, and in
            # the colour of whichever is drawn last the line would seem to be that schedule's.
            y=alt.Y("mean(unigram_loss):Q"),
            detail="schedule:N",
            tooltip=[
                alt.Tooltip("schedule:N"),
                alt.Tooltip("mean(unigram_loss):Q", title="unigram reference", format=VEGA_LOSS),
            ],
        )
    )
    layers = alt.layer(band, line, reference, data=records(table)).properties(width=340, height=240)
    title = f"{domain_label}: test loss during training"
    subtitle = (
        "line: mean over seeds; band: 95% t-interval over seeds; dashed: unigram reference "
        "(add-half unigram of the cells' own training tokens)"
    )
    return faceted(layers, table, title, subtitle)


def final_loss_chart(cells: pl.DataFrame, words: Words = D1_WORDS) -> alt.FacetChart:
    """Final test loss (nats/token) per schedule, one panel per ratio; dots are seeds, ticks means.
    The loss is the cells' `words.column`, which `words.measure` names ("final D1 test loss").

    Each panel has its own y range: the question is which schedule wins at a given amount of D1,
    and a shared range would flatten those gaps under the much larger gaps between ratios.
    """
    column = words.column
    table = panel_label(
        cells.select("ratio", "ratio_value", "schedule", "arm", "seed", column), words.ratio
    )
    colour = alt.Color("schedule:N", title="schedule", scale=schedule_scale(table))
    y_title = f"{words.measure} (nats/token)"
    x = alt.X("schedule:N", title="schedule", axis=alt.Axis(labelAngle=0))
    mean = (
        alt.Chart()
        .mark_tick(thickness=3, size=36)
        .encode(x=x, y=alt.Y(f"mean({column}):Q", title=y_title), color=colour)
    )
    seeds = (
        alt.Chart()
        .mark_circle(size=60, opacity=0.75)
        .encode(
            x=x,
            y=alt.Y(f"{column}:Q", title=y_title, scale=alt.Scale(zero=False)),
            color=colour,
            tooltip=[
                alt.Tooltip("schedule:N"),
                alt.Tooltip("seed:Q", format="d"),
                alt.Tooltip(f"{column}:Q", title=y_title, format=VEGA_LOSS),
            ],
        )
    )
    layers = alt.layer(mean, seeds, data=records(table)).properties(width=220, height=220)
    title = f"{words.measure[0].upper()}{words.measure[1:]} per schedule"
    chart = faceted(layers, table, title, "dots: individual seeds; tick: mean over seeds")
    return chart.resolve_scale(y="independent")


def barcode_chart(barcodes: pl.DataFrame, lr_profile: pl.DataFrame) -> alt.VConcatChart:
    """Where D1 sits in each stream, and directly under it the learning rate of every arm on the
    same time axis: one block per schedule, one column per ratio.

    Drawn for the lowest seed only: seeds change which blocks land where, not the shape. Under a
    decaying schedule, D1 placed late is also D1 trained at a low learning rate; this chart puts
    the two side by side so neither is read without the other.
    """
    first_seed = barcodes.get_column("seed").min()
    bars = barcodes.filter(pl.col("seed") == first_seed)
    rates = step_rates(lr_profile, first_seed)
    n_bins = bars.get_column("bin").max() + 1
    ratios = bars.sort("ratio_value")["ratio"].unique(maintain_order=True).to_list()
    schedules = bars["schedule"].unique(maintain_order=True).to_list()
    # fill, not color: a scale of its own shared by every panel, so its legend is drawn once,
    # and the strip needs no legend or axis of its own between it and its lines.
    share = alt.Fill(
        "target_share:Q", title="D1 share", scale=alt.Scale(scheme="viridis", domain=[0, 1])
    )
    rows = []
    for schedule in schedules:
        blocks = []
        for ratio in ratios:
            keep = (pl.col("schedule") == schedule) & (pl.col("ratio") == ratio)
            strip = (
                alt.Chart(records(bars.filter(keep)), title=f"{schedule} · D1 ratio {ratio}")
                .mark_rect()
                .encode(
                    x=alt.X("progress:Q", title=None, scale=alt.Scale(domain=[0, 1]), axis=None),
                    x2="progress_end:Q",
                    fill=share,
                    tooltip=[
                        alt.Tooltip("progress:Q", title="from", format=".0%"),
                        alt.Tooltip("target_share:Q", title="D1 share", format=VEGA_PERCENT),
                    ],
                )
                .transform_calculate(progress_end=f"datum.progress + {1 / n_bins}")
                .properties(width=STRIP_WIDTH, height=16)
            )
            line = lr_line(rates.filter(keep))
            blocks.append(alt.vconcat(strip, line, spacing=2))
        rows.append(alt.hconcat(*blocks, spacing=24))
    title = "Where D1 sits in each stream, and the learning rate it meets there"
    subtitle = (
        f"strip: D1 share of each {100 / n_bins:g}% stretch of training (seed {first_seed}); "
        "lines: learning rate of each arm as a fraction of its peak, same time axis"
    )
    chart = alt.vconcat(*rows, spacing=14).properties(
        title=alt.TitleParams(title, subtitle=subtitle, anchor="start")
    )
    return readable(chart)


def paired_heatmap(
    paired: pl.DataFrame, metric: str = "d1_test_loss", words: Words = D1_WORDS
) -> alt.FacetChart:
    """Mean paired difference against the baseline for every (ratio, schedule), one panel per
    learning-rate arm: blue where the schedule lowers the loss, red where it raises it; each
    cell labelled with its (unadjusted, exploratory) 95% CI. `words` name the metric."""
    table = paired.filter(pl.col("metric") == metric)
    label = [
        f"{loss(mean, signed=True)} [{loss(low, signed=True)}, {loss(high, signed=True)}]"
        for mean, low, high in table.select("mean_difference", "ci_low", "ci_high").iter_rows()
    ]
    table = table.with_columns(pl.Series("label", label, pl.String))
    ratios = table.sort("ratio_value")["ratio"].unique(maintain_order=True).to_list()
    extent = max(float(table["mean_difference"].abs().max() or 0.0), 1e-6)
    base = alt.Chart().encode(
        x=alt.X("schedule:N", title="schedule", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("ratio:N", title=words.ratio, sort=ratios),
    )
    rects = base.mark_rect().encode(
        color=alt.Color(
            "mean_difference:Q",
            title=f"Δ {words.short} (nats/token)",
            scale=alt.Scale(scheme="redblue", reverse=True, domain=[-extent, extent]),
        ),
        tooltip=[
            "ratio:N",
            "schedule:N",
            "arm:N",
            *loss_tooltips("mean_difference", "ci_low", "ci_high"),
            alt.Tooltip("n_seeds:Q", title="seeds", format="d"),
        ],
    )
    text = base.mark_text(fontSize=12).encode(text="label:N")
    layers = alt.layer(rects, text, data=records(table)).properties(
        width=alt.Step(170), height=alt.Step(40)
    )
    return readable(
        layers.facet(column=alt.Column("arm:N", title="learning-rate arm")).properties(
            title=alt.TitleParams(
                f"Paired change in {words.measure} against the baseline",
                subtitle=(
                    "mean over seeds [95% t-interval, unadjusted: exploratory]; "
                    f"below 0 (blue): the schedule {words.helps}"
                ),
                anchor="start",
            )
        )
    )


def benefit_chart(
    paired: pl.DataFrame, metric: str = "d1_test_loss", words: Words = D1_WORDS
) -> alt.LayerChart:
    """H2: benefit over the baseline (baseline minus schedule) against the amount of D1, with
    95% intervals; one line per schedule and learning-rate arm (dash), ratios on a log axis."""
    table = paired.filter(pl.col("metric") == metric).with_columns(
        (-pl.col("mean_difference")).alias("benefit"),
        (-pl.col("ci_high")).alias("benefit_low"),
        (-pl.col("ci_low")).alias("benefit_high"),
    )
    colour = alt.Color("schedule:N", title="schedule", scale=schedule_scale(table))
    x = alt.X(
        "ratio_value:Q",
        title=f"{words.ratio} ({words.ratio_unit}, log scale)",
        scale=alt.Scale(type="log"),
    )
    line = (
        alt.Chart()
        .mark_line(point=True)
        .encode(
            x=x,
            y=alt.Y("benefit:Q", title=f"{words.short} benefit over baseline (nats/token)"),
            color=colour,
            strokeDash=alt.StrokeDash("arm:N", title="learning-rate arm"),
            tooltip=[
                "schedule:N",
                "arm:N",
                "ratio:N",
                *loss_tooltips("benefit", "benefit_low", "benefit_high"),
            ],
        )
    )
    bars = (
        alt.Chart()
        .mark_errorbar(ticks=True)
        .encode(x=x, y="benefit_low:Q", y2="benefit_high:Q", color=colour, detail="arm:N")
    )
    zero = alt.Chart().mark_rule(strokeDash=[4, 4], color="#888").encode(y=alt.datum(0))
    return alt.layer(bars, line, zero, data=records(table)).properties(
        width=520,
        height=300,
        title=alt.TitleParams(
            f"H2: benefit of each schedule against the amount of {words.amount}",
            subtitle="above 0: better than the baseline; H2 expects the benefit to shrink",
            anchor="start",
        ),
    )
