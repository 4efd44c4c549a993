"""The report's data section: how each domain's documents were read and cleaned, then documents
and tokens per domain and split, and D1 per ratio."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from curriculab.io import read_json
from curriculab.report import fmt
from curriculab.report.sections import table


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


def describe_cap(download: dict[str, Any] | None) -> str:
    """Which documents of the source a domain read: all, a random subset, or the first ones."""
    if not download:
        return "not recorded"
    kept, total, cap = download["kept"], download.get("source_documents"), download["max_docs"]
    of = "" if total is None else f" of {total:,}"
    if cap is None:
        return f"all {kept:,}"
    if download["sample"] == "first":
        return f"the first {kept:,}{of} in source order (max_docs {cap:,}, sample: first)"
    if kept < cap:  # the source held fewer distinct documents than the cap
        return f"all {kept:,} distinct{of} (max_docs {cap:,} not reached)"
    return f"{kept:,}{of}, a random subset by content hash (max_docs {cap:,}, sample: random)"


_CHECK = ("threshold", "shingle", "num_perm", "drop")  # the check's settings (study-wide)


def prepare_table(domains: Sequence[str], manifests: Sequence[str | Path]) -> pl.DataFrame:
    """One row per domain: which documents were read, what cleaning dropped and why, the test
    documents with a near-duplicate in the domain's train split, and the check's settings
    (from the `prepare` record that the shard manifests carry; domains prepared before it was
    recorded are left out)."""
    rows = []
    for name, path in zip(domains, manifests, strict=True):
        record = read_json(path).get("prepare")
        if record is None:
            continue
        near = record["near_duplicates"]
        rows.append(
            {
                "domain": name,
                "documents read": describe_cap(record["download"]),
                "too short": record["short"],
                "exact duplicates": record["exact_duplicates"],
                "outside subset": record["outside_subset"],
                "test near-duplicates of train": near["found"],
                "of test documents": near["test_documents"],
                "dropped from test": near["dropped"],
                **{key: near[key] for key in _CHECK},
            }
        )
    return pl.DataFrame(rows)


def _near_duplicate_text(check: dict[str, Any]) -> str:
    """The near-duplicate check in words."""
    done = "dropped from test" if check["drop"] else "counted, not dropped"
    return (
        "A test document is a near-duplicate of a train document of its own domain when their "
        f"sets of {check['shingle']}-word shingles have Jaccard similarity {check['threshold']:g} "
        f"or more (MinHash LSH with {check['num_perm']} permutations finds candidates, the exact "
        f"similarity confirms them); those found are {done}. Other domains' train splits are "
        "not searched, though the model trains on them too."
    )


def data_section(data: pl.DataFrame, prepared: pl.DataFrame | None = None) -> str:
    """The Data section: how each domain's documents were read and cleaned (prepare_table),
    then documents, tokens and blocks per split (data_table)."""
    parts = []
    if prepared is not None and not prepared.is_empty():
        unused = [*_CHECK] + ["outside subset"] * (prepared["outside subset"].sum() == 0)
        shown = [c for c in prepared.columns if c not in unused]
        parts += [
            "<p>Documents read from each source, and those that cleaning removed around the "
            "content-hash train/test split. A domain capped by max_docs with sample: random "
            "holds a random subset of its source; with sample: first it holds the source's "
            "first documents, which in a source sorted by topic are a few topics.</p>",
            table(prepared, {c: c for c in shown}),
            f"<p>{html.escape(_near_duplicate_text(prepared.row(0, named=True)))}</p>",
        ]
    parts.append(table(data, {c: c for c in data.columns}, {"tokens": fmt.tokens}))
    return "\n".join(parts)
