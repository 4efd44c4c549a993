"""What every chart of the report shares: inline data, readable fonts, one panel per ratio and
learning-rate arm, schedule colours, and the learning-rate line drawn under a barcode strip.

Charts receive their data as inline JSON records rather than DataFrames: altair then neither
needs a DataFrame interchange layer nor applies its 5,000-row limit, and non-finite losses (a
diverged run) become nulls, which Vega draws as gaps instead of failing to parse.
"""

from __future__ import annotations

import altair as alt
import polars as pl

from curriculab.report.fmt import VEGA_LOSS, VEGA_PERCENT

LOSS_TITLE = "test loss (nats/token)"
TOKENS_TITLE = "tokens seen"
PANEL_COLUMNS = 3  # facet panels per row before wrapping; keeps panels readable at 1400 px
STRIP_WIDTH = 300  # px: a barcode strip and the learning-rate line under it


def readable(chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    """Larger fonts than Vega's defaults, which are hard to read in a report at 100 % zoom."""
    return (
        chart.configure_axis(labelFontSize=12, titleFontSize=13)
        .configure_header(labelFontSize=13, labelFontWeight="bold")
        .configure_legend(labelFontSize=12, titleFontSize=13)
        .configure_title(fontSize=16, subtitleFontSize=12)
    )


def records(table: pl.DataFrame) -> alt.Data:
    """Inline Vega data with NaN/inf replaced by null (JSON has no NaN)."""
    finite = table.with_columns(
        pl.when(pl.col(pl.Float64).is_finite()).then(pl.col(pl.Float64)).name.keep()
    )
    return alt.Data(values=finite.to_dicts())


def panel_label(table: pl.DataFrame, ratio: str = "D1 ratio") -> pl.DataFrame:
    """Add `panel` ("D1 ratio 0.05", and "· lr constant" when the table has learning-rate arms):
    the facet title for one amount of data under one arm; `ratio` names the amount."""
    label = [pl.lit(f"{ratio} "), pl.col("ratio")]
    if "arm" in table.columns:
        label += [pl.lit(" · lr "), pl.col("arm")]
    return table.with_columns(pl.concat_str(label).alias("panel"))


def panel_order(table: pl.DataFrame) -> list[str]:
    """Panel labels by arm, then in numeric ratio order (as strings, "10" sorts before "2")."""
    keys = ["arm", "ratio_value"] if "arm" in table.columns else ["ratio_value"]
    return table.sort(keys).get_column("panel").unique(maintain_order=True).to_list()


def panel_columns(table: pl.DataFrame) -> int:
    """One row of panels per learning-rate arm: as many columns as ratios (at most 4)."""
    return min(4, table.get_column("ratio").n_unique()) if "arm" in table.columns else PANEL_COLUMNS


def schedule_scale(table: pl.DataFrame) -> alt.Scale:
    """Schedules in a fixed, sorted order, so every chart gives a schedule the same colour."""
    return alt.Scale(domain=sorted(table.get_column("schedule").unique().to_list()))


def faceted(
    layers: alt.LayerChart, table: pl.DataFrame, title: str, subtitle: str
) -> alt.FacetChart:
    """One panel per ratio (in ratio order), with a left-aligned title and subtitle."""
    chart = layers.facet(
        facet=alt.Facet("panel:N", title=None, sort=panel_order(table)),
        columns=panel_columns(table),
    ).properties(title=alt.TitleParams(title, subtitle=subtitle, anchor="start"))
    return readable(chart)


def loss_tooltips(*fields: str) -> list[alt.Tooltip]:
    """Tooltips of loss differences (nats/token), signed, with the tables' 3 decimals."""
    return [alt.Tooltip(f"{field}:Q", format="+" + VEGA_LOSS) for field in fields]


def step_rates(lr_profile: pl.DataFrame, seed: int) -> pl.DataFrame:
    """One seed's learning-rate profile, the last stretch's value repeated at 100% so a
    step-after line ends where the strip above it ends."""
    rates = lr_profile.filter(pl.col("seed") == seed)
    last = rates.filter(pl.col("bin") == pl.col("bin").max().over("ratio", "schedule", "arm"))
    return pl.concat([rates, last.with_columns(progress=pl.lit(1.0))]).sort("progress")


# stroke, not color: a scale of its own, shared by every panel, so its legend is drawn once.
ARM_STROKE = alt.Stroke("arm:N", title="learning-rate arm", scale=alt.Scale(scheme="dark2"))


def lr_line(rates: pl.DataFrame) -> alt.Chart:
    """The learning rate of every arm (fraction of its peak) over training, on the [0, 1] time
    axis of the strip above it."""
    x = alt.X("progress:Q", title=None, scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%"))
    return (
        alt.Chart(records(rates))
        .mark_line(interpolate="step-after")
        .encode(
            x=x,
            y=alt.Y(
                "lr_fraction:Q",
                title="lr / peak",
                scale=alt.Scale(domain=[0, 1.05]),
                axis=alt.Axis(values=[0, 0.5, 1]),
            ),
            stroke=ARM_STROKE,
            tooltip=[
                alt.Tooltip("arm:N"),
                alt.Tooltip("progress:Q", title="from", format=".0%"),
                alt.Tooltip("lr_fraction:Q", title="lr / peak", format=VEGA_PERCENT),
            ],
        )
        .properties(width=STRIP_WIDTH, height=55)
    )
