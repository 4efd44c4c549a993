"""Altair chart builders for the report: learning curves and final test loss per cell.

Charts receive their data as inline JSON records rather than DataFrames: altair then neither
needs a DataFrame interchange layer nor applies its 5,000-row limit, and non-finite losses (a
diverged run) become nulls, which Vega draws as gaps instead of failing to parse.
"""

from __future__ import annotations

import altair as alt
import polars as pl

from curriculab.analysis.statistics import t_quantile
from curriculab.report.fmt import VEGA_LOSS, VEGA_PERCENT, loss, vega_tokens

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
    """Add `panel` ("D1 ratio 0.05", and "· lr constant" when the table has learning-rate arms):
    the facet title for one amount of D1 under one arm."""
    label = [pl.lit("D1 ratio "), pl.col("ratio")]
    if "arm" in table.columns:
        label += [pl.lit(" · lr "), pl.col("arm")]
    return table.with_columns(pl.concat_str(label).alias("panel"))


def _panel_order(table: pl.DataFrame) -> list[str]:
    """Panel labels by arm, then in numeric ratio order (as strings, "10" sorts before "2")."""
    keys = ["arm", "ratio_value"] if "arm" in table.columns else ["ratio_value"]
    return table.sort(keys).get_column("panel").unique(maintain_order=True).to_list()


def _panel_columns(table: pl.DataFrame) -> int:
    """One row of panels per learning-rate arm: as many columns as ratios (at most 4)."""
    return min(4, table.get_column("ratio").n_unique()) if "arm" in table.columns else PANEL_COLUMNS


def _schedule_scale(table: pl.DataFrame) -> alt.Scale:
    """Schedules in a fixed, sorted order, so every chart gives a schedule the same colour."""
    return alt.Scale(domain=sorted(table.get_column("schedule").unique().to_list()))


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
    curves: pl.DataFrame, domain_label: str, is_target: bool
) -> alt.FacetChart:
    """Test loss (nats/token) against tokens seen, one line per schedule, one panel per ratio
    and learning-rate arm.

    Lines are the mean over seeds; the light band is the 95% t-interval over seeds; the dashed
    line is the unigram reference (a unigram model of the tokens the cells trained on). is_target
    picks the D1 rows (True) or the pooled other domains (False); domain_label names them.
    """
    table = _panel_label(_mean_curves(curves, is_target))
    # Opaque line symbols: the legend would otherwise take the faint opacity of the bands.
    legend = alt.Legend(symbolType="stroke", symbolOpacity=1, symbolStrokeWidth=3)
    colour = alt.Color("schedule:N", title="schedule", scale=_schedule_scale(table), legend=legend)
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
    layers = alt.layer(band, line, reference, data=_records(table)).properties(
        width=340, height=240
    )
    title = f"{domain_label}: test loss during training"
    subtitle = (
        "line: mean over seeds; band: 95% t-interval over seeds; dashed: unigram reference "
        "(add-half unigram of the cells' own training tokens)"
    )
    return _faceted(layers, table, title, subtitle)


def final_loss_chart(cells: pl.DataFrame, column: str = "d1_test_loss") -> alt.FacetChart:
    """Final test loss (nats/token) per schedule, one panel per ratio; dots are seeds, ticks means.

    Each panel has its own y range: the question is which schedule wins at a given amount of D1,
    and a shared range would flatten those gaps under the much larger gaps between ratios.
    """
    table = _panel_label(cells.select("ratio", "ratio_value", "schedule", "arm", "seed", column))
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
                alt.Tooltip("seed:Q", format="d"),
                alt.Tooltip(f"{column}:Q", title=y_title, format=VEGA_LOSS),
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
        facet=alt.Facet("panel:N", title=None, sort=_panel_order(table)),
        columns=_panel_columns(table),
    ).properties(title=alt.TitleParams(title, subtitle=subtitle, anchor="start"))
    return _readable(chart)


def barcode_chart(barcodes: pl.DataFrame, lr_profile: pl.DataFrame) -> alt.VConcatChart:
    """Where D1 sits in each stream, and directly under it the learning rate of every arm on the
    same time axis: one block per schedule, one column per ratio.

    Drawn for the lowest seed only: seeds change which blocks land where, not the shape. Under a
    decaying schedule, D1 placed late is also D1 trained at a low learning rate; this chart puts
    the two side by side so neither is read without the other.
    """
    first_seed = barcodes.get_column("seed").min()
    bars = barcodes.filter(pl.col("seed") == first_seed)
    rates = lr_profile.filter(pl.col("seed") == first_seed)
    n_bins = bars.get_column("bin").max() + 1
    ratios = bars.sort("ratio_value")["ratio"].unique(maintain_order=True).to_list()
    schedules = bars["schedule"].unique(maintain_order=True).to_list()
    # The learning rate of the last stretch is held to 100%, where the strip ends (step-after).
    last = rates.filter(pl.col("bin") == pl.col("bin").max().over("ratio", "schedule", "arm"))
    rates = pl.concat([rates, last.with_columns(progress=pl.lit(1.0))]).sort("progress")
    time = alt.Scale(domain=[0, 1])
    x = alt.X("progress:Q", title=None, scale=time, axis=alt.Axis(format="%"))
    # fill and stroke, not color: two scales, each shared by every panel, so each legend is
    # drawn once, and the strip needs no legend or axis of its own between it and its lines.
    share = alt.Fill(
        "target_share:Q", title="D1 share", scale=alt.Scale(scheme="viridis", domain=[0, 1])
    )
    arm = alt.Stroke("arm:N", title="learning-rate arm", scale=alt.Scale(scheme="dark2"))
    rows = []
    for schedule in schedules:
        blocks = []
        for ratio in ratios:
            keep = (pl.col("schedule") == schedule) & (pl.col("ratio") == ratio)
            strip = (
                alt.Chart(_records(bars.filter(keep)), title=f"{schedule} · D1 ratio {ratio}")
                .mark_rect()
                .encode(
                    x=alt.X("progress:Q", title=None, scale=time, axis=None),
                    x2="progress_end:Q",
                    fill=share,
                    tooltip=[
                        alt.Tooltip("progress:Q", title="from", format=".0%"),
                        alt.Tooltip("target_share:Q", title="D1 share", format=VEGA_PERCENT),
                    ],
                )
                .transform_calculate(progress_end=f"datum.progress + {1 / n_bins}")
                .properties(width=300, height=16)
            )
            line = (
                alt.Chart(_records(rates.filter(keep)))
                .mark_line(interpolate="step-after")
                .encode(
                    x=x,
                    y=alt.Y(
                        "lr_fraction:Q",
                        title="lr / peak",
                        scale=alt.Scale(domain=[0, 1.05]),
                        axis=alt.Axis(values=[0, 0.5, 1]),
                    ),
                    stroke=arm,
                    tooltip=[
                        alt.Tooltip("arm:N"),
                        alt.Tooltip("progress:Q", title="from", format=".0%"),
                        alt.Tooltip("lr_fraction:Q", title="lr / peak", format=VEGA_PERCENT),
                    ],
                )
                .properties(width=300, height=55)
            )
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
    return _readable(chart)


def _loss_tooltips(*fields: str) -> list[alt.Tooltip]:
    """Tooltips of loss differences (nats/token), signed, with the tables' 3 decimals."""
    return [alt.Tooltip(f"{field}:Q", format="+" + VEGA_LOSS) for field in fields]


def paired_heatmap(paired: pl.DataFrame, metric: str = "d1_test_loss") -> alt.FacetChart:
    """Mean paired difference against the baseline for every (ratio, schedule), one panel per
    learning-rate arm: blue where the schedule lowers the loss, red where it raises it; each
    cell labelled with its (unadjusted, exploratory) 95% CI."""
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
            "arm:N",
            *_loss_tooltips("mean_difference", "ci_low", "ci_high"),
            alt.Tooltip("n_seeds:Q", title="seeds", format="d"),
        ],
    )
    text = base.mark_text(fontSize=12).encode(text="label:N")
    layers = alt.layer(rects, text, data=_records(table)).properties(
        width=alt.Step(170), height=alt.Step(40)
    )
    return _readable(
        layers.facet(column=alt.Column("arm:N", title="learning-rate arm")).properties(
            title=alt.TitleParams(
                "Paired change in final D1 test loss against the baseline",
                subtitle=(
                    "mean over seeds [95% t-interval, unadjusted: exploratory]; "
                    "below 0 (blue): the schedule helps D1"
                ),
                anchor="start",
            )
        )
    )


def benefit_chart(paired: pl.DataFrame, metric: str = "d1_test_loss") -> alt.LayerChart:
    """H2: benefit over the baseline (baseline minus schedule) against the amount of D1, with
    95% intervals; one line per schedule and learning-rate arm (dash), ratios on a log axis."""
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
            strokeDash=alt.StrokeDash("arm:N", title="learning-rate arm"),
            tooltip=[
                "schedule:N",
                "arm:N",
                "ratio:N",
                *_loss_tooltips("benefit", "benefit_low", "benefit_high"),
            ],
        )
    )
    bars = (
        alt.Chart()
        .mark_errorbar(ticks=True)
        .encode(x=x, y="benefit_low:Q", y2="benefit_high:Q", color=colour, detail="arm:N")
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
