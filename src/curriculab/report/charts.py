"""Altair chart builders for the report: learning curves and final test loss per cell.

Charts receive their data as inline JSON records rather than DataFrames: altair then neither
needs a DataFrame interchange layer nor applies its 5,000-row limit, and non-finite losses (a
diverged run) become nulls, which Vega draws as gaps instead of failing to parse.
"""

from __future__ import annotations

import altair as alt
import polars as pl

from curriculab.analysis.statistics import t_quantile

LOSS_TITLE = "test loss (nats/token)"
TOKENS_TITLE = "tokens seen"
PANEL_COLUMNS = 3  # facet panels per row before wrapping; keeps panels readable at 1400 px


def _readable(chart: alt.FacetChart) -> alt.FacetChart:
    """Larger fonts than Vega's defaults, which are hard to read in a report at 100 % zoom."""
    return (
        chart.configure_axis(labelFontSize=12, titleFontSize=13)
        .configure_header(labelFontSize=13, labelFontWeight="bold")
        .configure_legend(labelFontSize=12, titleFontSize=13)
        .configure_title(fontSize=16, subtitleFontSize=12)
    )


def _records(table: pl.DataFrame) -> alt.Data:
    """Inline Vega data with NaN/inf replaced by null (JSON has no NaN)."""
    finite = table.with_columns(
        pl.when(pl.col(pl.Float64).is_finite()).then(pl.col(pl.Float64)).name.keep()
    )
    return alt.Data(values=finite.to_dicts())


def _panel_label(table: pl.DataFrame) -> pl.DataFrame:
    """Add `panel` ("D1 ratio 0.05"): the facet title for one amount of D1."""
    return table.with_columns(pl.concat_str(pl.lit("D1 ratio "), pl.col("ratio")).alias("panel"))


def _panel_order(table: pl.DataFrame) -> list[str]:
    """Panel labels in numeric ratio order (as strings, "10" would sort before "2")."""
    return table.sort("ratio_value").get_column("panel").unique(maintain_order=True).to_list()


def _schedule_scale(table: pl.DataFrame) -> alt.Scale:
    """Schedules in a fixed, sorted order, so every chart gives a schedule the same colour."""
    return alt.Scale(domain=sorted(table.get_column("schedule").unique().to_list()))


def _mean_curves(curves: pl.DataFrame, is_target: bool) -> pl.DataFrame:
    """Per (ratio, schedule, step): mean over seeds of the test loss and its 95% t-interval
    (loss_low, loss_high; null with a single seed).

    Several non-target domains are first pooled per seed, weighted by their test-token counts
    (column n_tokens) when curves carries it, else equally.
    """
    chosen = curves.filter(pl.col("is_target") == is_target)
    if chosen.is_empty():
        side = "target" if is_target else "non-target"
        raise ValueError(f"learning_curve_chart: curves has no {side} rows")
    weight = pl.col("n_tokens").cast(pl.Float64) if "n_tokens" in chosen.columns else pl.lit(1.0)
    per_seed = (
        chosen.with_columns(weight.alias("weight"))
        .group_by("ratio", "ratio_value", "schedule", "seed", "step")
        .agg(
            pl.col("tokens_seen").first(),
            ((pl.col("loss") * pl.col("weight")).sum() / pl.col("weight").sum()).alias("loss"),
        )
    )
    return (
        per_seed.group_by("ratio", "ratio_value", "schedule", "step")
        .agg(
            pl.col("tokens_seen").mean(),
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
        .sort("ratio_value", "schedule", "step")
    )


def learning_curve_chart(
    curves: pl.DataFrame, domain_label: str, is_target: bool
) -> alt.FacetChart:
    """Test loss (nats/token) against tokens seen, one line per schedule, one panel per ratio.

    Lines are the mean over seeds; the light band is the 95% t-interval over seeds. is_target picks
    the D1 rows (True) or the pooled other domains (False); domain_label names them in the title.
    """
    table = _panel_label(_mean_curves(curves, is_target))
    # Opaque line symbols: the legend would otherwise take the faint opacity of the bands.
    legend = alt.Legend(symbolType="stroke", symbolOpacity=1, symbolStrokeWidth=3)
    colour = alt.Color("schedule:N", title="schedule", scale=_schedule_scale(table), legend=legend)
    # SI labels (1.5M); the expression keeps the origin "0" rather than Vega's "0M".
    axis = alt.Axis(labelExpr="datum.value == 0 ? '0' : format(datum.value, '~s')")
    x = alt.X("tokens_seen:Q", title=TOKENS_TITLE, axis=axis)
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
        .encode(
            x=x,
            y=alt.Y("loss_mean:Q", title=LOSS_TITLE, scale=alt.Scale(zero=False)),
            color=colour,
            tooltip=[
                alt.Tooltip("schedule:N"),
                alt.Tooltip("tokens_seen:Q", title=TOKENS_TITLE, format=","),
                alt.Tooltip("loss_mean:Q", title="mean loss (nats/token)", format=".4f"),
                alt.Tooltip("n_seeds:Q", title="seeds"),
            ],
        )
    )
    layers = alt.layer(band, line, data=_records(table)).properties(width=380, height=260)
    title = f"{domain_label}: test loss during training"
    return _faceted(layers, table, title, "line: mean over seeds; band: 95% t-interval over seeds")


def final_loss_chart(cells: pl.DataFrame, column: str = "d1_test_loss") -> alt.FacetChart:
    """Final test loss (nats/token) per schedule, one panel per ratio; dots are seeds, ticks means.

    Each panel has its own y range: the question is which schedule wins at a given amount of D1,
    and a shared range would flatten those gaps under the much larger gaps between ratios.
    """
    table = _panel_label(cells.select("ratio", "ratio_value", "schedule", "seed", column))
    colour = alt.Color("schedule:N", title="schedule", scale=_schedule_scale(table))
    y_title = f"final {column.removesuffix('_test_loss').upper()} {LOSS_TITLE}"
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
                alt.Tooltip("seed:Q"),
                alt.Tooltip(f"{column}:Q", title=y_title, format=".4f"),
            ],
        )
    )
    layers = alt.layer(mean, seeds, data=_records(table)).properties(width=220, height=220)
    title = f"Final {column.removesuffix('_test_loss').upper()} test loss per schedule"
    chart = _faceted(layers, table, title, "dots: individual seeds; tick: mean over seeds")
    return chart.resolve_scale(y="independent")


def _faceted(
    layers: alt.LayerChart, table: pl.DataFrame, title: str, subtitle: str
) -> alt.FacetChart:
    """One panel per D1 ratio (in ratio order), with a left-aligned title and subtitle."""
    chart = layers.facet(
        facet=alt.Facet("panel:N", title=None, sort=_panel_order(table)), columns=PANEL_COLUMNS
    ).properties(title=alt.TitleParams(title, subtitle=subtitle, anchor="start"))
    return _readable(chart)


def barcode_chart(barcodes: pl.DataFrame) -> alt.FacetChart:
    """D1 share against training progress: one strip per schedule, one panel per ratio.

    Drawn for the lowest seed only: seeds change which blocks land where, not the shape.
    """
    first_seed = barcodes.get_column("seed").min()
    table = _panel_label(barcodes.filter(pl.col("seed") == first_seed))
    n_bins = table.get_column("bin").max() + 1
    strips = (
        alt.Chart()
        .mark_rect()
        .encode(
            x=alt.X(
                "progress:Q",
                title="training progress (fraction of sequences)",
                scale=alt.Scale(domain=[0, 1]),
            ),
            x2="progress_end:Q",
            y=alt.Y("schedule:N", title=None, sort=sorted(table["schedule"].unique().to_list())),
            color=alt.Color(
                "target_share:Q", title="D1 share", scale=alt.Scale(scheme="viridis", domain=[0, 1])
            ),
            tooltip=[
                alt.Tooltip("schedule:N"),
                alt.Tooltip("progress:Q", title="from", format=".0%"),
                alt.Tooltip("target_share:Q", title="D1 share", format=".2f"),
            ],
        )
        .transform_calculate(progress_end=f"datum.progress + {1 / n_bins}")
    )
    layers = alt.layer(strips, data=_records(table)).properties(width=380, height=alt.Step(22))
    title = "Where D1 sits in each stream"
    subtitle = f"D1 share of each {100 / n_bins:g}% stretch of training (seed {first_seed})"
    return _faceted(layers, table, title, subtitle)


def paired_heatmap(paired: pl.DataFrame, metric: str = "d1_test_loss") -> alt.LayerChart:
    """Mean paired difference against the baseline for every (ratio, schedule): blue where the
    schedule lowers the loss, red where it raises it; each cell labelled with its 95% CI."""
    table = paired.filter(pl.col("metric") == metric).with_columns(
        pl.format(
            "{} [{}, {}]",
            pl.col("mean_difference").round(3),
            pl.col("ci_low").round(3),
            pl.col("ci_high").round(3),
        ).alias("label")
    )
    ratios = table.sort("ratio_value")["ratio"].unique(maintain_order=True).to_list()
    extent = max(float(table["mean_difference"].abs().max() or 0.0), 1e-6)
    base = alt.Chart().encode(
        x=alt.X("schedule:N", title="schedule", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("ratio:N", title="D1 ratio", sort=ratios),
    )
    rects = base.mark_rect().encode(
        color=alt.Color(
            "mean_difference:Q",
            title="Δ D1 loss (nats/token)",
            scale=alt.Scale(scheme="redblue", reverse=True, domain=[-extent, extent]),
        ),
        tooltip=[
            "ratio:N",
            "schedule:N",
            "mean_difference:Q",
            "ci_low:Q",
            "ci_high:Q",
            "n_seeds:Q",
        ],
    )
    text = base.mark_text(fontSize=12).encode(text="label:N")
    return alt.layer(rects, text, data=_records(table)).properties(
        width=alt.Step(170),
        height=alt.Step(40),
        title=alt.TitleParams(
            "Paired change in final D1 test loss against the baseline",
            subtitle="mean over seeds [95% t-interval]; below 0 (blue): the schedule helps D1",
            anchor="start",
        ),
    )


def benefit_chart(paired: pl.DataFrame, metric: str = "d1_test_loss") -> alt.LayerChart:
    """H2: benefit over the baseline (baseline minus schedule) against the amount of D1, with
    95% intervals; one line per schedule, ratios on a log axis."""
    table = paired.filter(pl.col("metric") == metric).with_columns(
        (-pl.col("mean_difference")).alias("benefit"),
        (-pl.col("ci_high")).alias("benefit_low"),
        (-pl.col("ci_low")).alias("benefit_high"),
    )
    colour = alt.Color("schedule:N", title="schedule", scale=_schedule_scale(table))
    x = alt.X(
        "ratio_value:Q",
        title="D1 ratio (D1 / D2 train blocks, log scale)",
        scale=alt.Scale(type="log"),
    )
    line = (
        alt.Chart()
        .mark_line(point=True)
        .encode(
            x=x,
            y=alt.Y("benefit:Q", title="D1 loss benefit over baseline (nats/token)"),
            color=colour,
            tooltip=["schedule:N", "ratio:N", "benefit:Q", "benefit_low:Q", "benefit_high:Q"],
        )
    )
    bars = (
        alt.Chart()
        .mark_errorbar(ticks=True)
        .encode(x=x, y="benefit_low:Q", y2="benefit_high:Q", color=colour)
    )
    zero = alt.Chart().mark_rule(strokeDash=[4, 4], color="#888").encode(y=alt.datum(0))
    return alt.layer(bars, line, zero, data=_records(table)).properties(
        width=520,
        height=300,
        title=alt.TitleParams(
            "H2: benefit of each schedule against the amount of D1",
            subtitle="above 0: better than the baseline; H2 expects the benefit to shrink",
            anchor="start",
        ),
    )
