"""The report's data section: documents and tokens per domain and split, D1 per ratio."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl

from curriculab.io import read_json


def data_table(
    domains: Sequence[str], manifests: Sequence[str | Path], stream_domains: pl.DataFrame
) -> pl.DataFrame:
    """One row per domain and split (documents, tokens, blocks), then the blocks each domain
    contributes at every ratio (first seed: the D1 amount is the same for every seed)."""
    rows = []
    for name, path in zip(domains, manifests, strict=True):
        for split, info in read_json(path)["splits"].items():
            rows.append(
                {
                    "domain": name,
                    "split": split,
                    "documents": info["n_docs"],
                    "tokens": info["n_tokens"],
                    "blocks": info["n_blocks"],
                }
            )
    shards = pl.DataFrame(rows)
    first = stream_domains.filter(pl.col("seed") == stream_domains["seed"].min())
    used = (
        first.group_by("ratio", "ratio_value", "domain")
        .agg(pl.col("unique_blocks").max())
        .sort("ratio_value", "domain")
        .with_columns(pl.format("train blocks at ratio {}", "ratio").alias("split"))
        .select(
            "domain",
            "split",
            pl.lit(None, pl.Int64).alias("documents"),
            pl.lit(None, pl.Int64).alias("tokens"),
            pl.col("unique_blocks").alias("blocks"),
        )
    )
    return pl.concat([shards, used], how="vertical_relaxed")
