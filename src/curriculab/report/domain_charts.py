"""Charts of a study read domain by domain: where every domain sits in each stream (one strip
per domain) with the learning rate under it, and one learning-curve chart per domain."""

from __future__ import annotations

import altair as alt
import polars as pl

from curriculab.report.chart_base import STRIP_WIDTH, lr_line, readable, records, step_rates
from curriculab.report.charts import learning_curve_chart
from curriculab.report.fmt import VEGA_PERCENT
from curriculab.report.words import Words

STRIP_HEIGHT = 14  # px per domain


def target_as_domain(barcodes: pl.DataFrame, target: str) -> pl.DataFrame:
    """The target-only barcodes in the domain_barcodes layout (one domain: the target), for
    streams whose summaries record no other domain's share."""
    return barcodes.select(
        "ratio",
        "ratio_value",
        "schedule",
        "seed",
        pl.lit(target).alias("domain"),
        "bin",
        "progress",
        pl.col("target_share").alias("share"),
    )


def domain_barcode_chart(
    domain_barcodes: pl.DataFrame, lr_profile: pl.DataFrame, domains: list[str], words: Words
) -> alt.VConcatChart:
    """Where every domain sits in each stream: per (schedule, ratio) a block of strips, one row
    per domain (in `domains` order) coloured by its share of each stretch of training, and
    directly under it the learning rate of every arm on the same time axis. One block per
    schedule (rows) and ratio (columns); the lowest seed only, as barcode_chart."""
    first_seed = domain_barcodes.get_column("seed").min()
    bars = domain_barcodes.filter(pl.col("seed") == first_seed)
    rates = step_rates(lr_profile, first_seed)
    n_bins = bars.get_column("bin").max() + 1
    shown = [d for d in domains if d in set(bars["domain"])]
    ratios = bars.sort("ratio_value")["ratio"].unique(maintain_order=True).to_list()
    share = alt.Fill(
        "share:Q", title="share of the stretch", scale=alt.Scale(scheme="viridis", domain=[0, 1])
    )
    rows = []
    for schedule in bars["schedule"].unique(maintain_order=True).to_list():
        blocks = []
        for ratio in ratios:
            keep = (pl.col("schedule") == schedule) & (pl.col("ratio") == ratio)
            strips = (
                alt.Chart(records(bars.filter(keep)), title=f"{schedule} · {words.ratio} {ratio}")
                .mark_rect()
                .encode(
                    x=alt.X("progress:Q", title=None, scale=alt.Scale(domain=[0, 1]), axis=None),
                    x2="progress_end:Q",
                    y=alt.Y("domain:N", title=None, sort=shown),
                    fill=share,
                    tooltip=[
                        alt.Tooltip("domain:N"),
                        alt.Tooltip("progress:Q", title="from", format=".0%"),
                        alt.Tooltip("share:Q", title="share", format=VEGA_PERCENT),
                    ],
                )
                .transform_calculate(progress_end=f"datum.progress + {1 / n_bins}")
                .properties(width=STRIP_WIDTH, height=STRIP_HEIGHT * len(shown))
            )
            blocks.append(alt.vconcat(strips, lr_line(rates.filter(keep)), spacing=2))
        rows.append(alt.hconcat(*blocks, spacing=24))
    title = "Where each domain sits in each stream, and the learning rate it meets there"
    subtitle = (
        f"strips: each domain's share of each {100 / n_bins:g}% stretch of training (seed "
        f"{first_seed}); lines: learning rate of each arm as a fraction of its peak"
    )
    chart = alt.vconcat(*rows, spacing=14).properties(
        title=alt.TitleParams(title, subtitle=subtitle, anchor="start")
    )
    return readable(chart)


def domain_curve_chart(
    curves: pl.DataFrame, domain: str, label: str, words: Words
) -> alt.FacetChart:
    """learning_curve_chart of one domain's test loss (no pooling), titled by `label`."""
    one = curves.filter(pl.col("domain") == domain).with_columns(is_target=pl.lit(True))
    return learning_curve_chart(one, label, True, words)
