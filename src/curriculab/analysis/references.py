"""Did the models learn more than token frequencies? Final losses against unigram references.

Each cell's eval.json holds, per domain, the cross-entropy of an add-half unigram model of the
very tokens that cell trained on (`curriculab.evaluate`). A model whose test loss is barely
below that reference has learned which tokens are common, little more; an ordering effect
measured on such models is about token frequencies, not about what a language model learns.
"""

from __future__ import annotations

import polars as pl

from curriculab.config import DEFAULT_MARGIN


def reference_table(
    cells: pl.DataFrame, domains: list[str], margin: float = DEFAULT_MARGIN
) -> pl.DataFrame:
    """Per (ratio, schedule, arm, domain): mean final test loss and unigram reference over
    seeds, the gain (reference minus loss, nats/token; mean and smallest over seeds), and
    `learned`: every seed's loss at least `margin` below its reference."""
    long = pl.concat(
        [
            cells.select(
                "ratio",
                "ratio_value",
                "schedule",
                "arm",
                "seed",
                pl.lit(name).alias("domain"),
                pl.col(f"test_loss_{name}").alias("loss"),
                pl.col(f"unigram_loss_{name}").alias("unigram_loss"),
            )
            for name in domains
        ]
    ).with_columns((pl.col("unigram_loss") - pl.col("loss")).alias("gain"))
    return (
        long.group_by("ratio", "schedule", "arm", "domain")
        .agg(
            pl.col("ratio_value").first(),
            pl.len().alias("n_seeds"),
            pl.col("loss").mean(),
            pl.col("unigram_loss").mean(),
            pl.col("gain").mean().alias("gain_mean"),
            pl.col("gain").min().alias("gain_min"),
        )
        .with_columns(
            (pl.col("gain_min") >= margin).alias("learned"), pl.lit(margin).alias("margin")
        )
        .sort("ratio_value", "schedule", "arm", "domain")
    )


def unlearned_groups(references: pl.DataFrame) -> pl.DataFrame:
    """The (ratio, schedule, arm, domain) groups whose models did not clearly beat the unigram."""
    return references.filter(~pl.col("learned"))
