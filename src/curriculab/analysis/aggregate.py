"""Gather every cell's run outputs into tidy polars tables: one row per cell, curves, a summary.

A cell is one (ratio, schedule, learning-rate arm, seed) training run. Its run directory holds
`eval.json` (final test loss per domain beside its unigram reference), `metrics.json`
(throughput, size, and the learning rate each domain was trained at) and `curve.parquet` (test
loss during training). D1 is the target domain; D2 is the only other domain or, when there are
several, their token-weighted mean, so "d2" always means "everything that is not the target".
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from curriculab.analysis.audit import FACTS_SCHEMA, run_facts
from curriculab.analysis.runs import (
    RunSpec,
    StreamSpec,
    cell_identity,
    check_runs,
    get_field,
    ratio_value,
    read_record,
)
from curriculab.analysis.statistics import t_quantile
from curriculab.io import atomic_path

METRIC_SCHEMA: dict[str, type[pl.DataType]] = {
    "tokens_seen": pl.Int64,  # training tokens consumed by the run
    "steps": pl.Int64,  # optimiser steps
    "tokens_per_second": pl.Float64,  # training throughput
    "n_params": pl.Int64,  # model parameters
    "wall_seconds": pl.Float64,  # training wall-clock time
    "flops_per_token": pl.Float64,  # training FLOPs per token (forward and backward)
}
# What the run did not train itself: a cell that resumes from a trunk checkpoint or from another
# cell's snapshot inherits that prefix's tokens (metrics.json `inherited`; null or absent: none).
COST_SCHEMA: dict[str, type[pl.DataType]] = {
    "inherited_tokens": pl.Int64,  # tokens of the prefix it resumed from (0: from step 0)
    "trained_tokens": pl.Int64,  # tokens_seen - inherited_tokens: what it trained itself
    "inherited_source": pl.String,  # "trunk", "cell", or null when trained from step 0
}
INHERITED_SOURCES = ("trunk", "cell")
CURVE_SCHEMA: dict[str, type[pl.DataType]] = {
    "step": pl.Int64,
    "tokens_seen": pl.Int64,
    "domain": pl.String,
    "loss": pl.Float64,  # nats/token
    "bits_per_byte": pl.Float64,
}
CELL_KEYS = ["ratio_value", "schedule", "arm", "seed"]
DOMAIN_FIELDS = ("loss", "bits_per_byte", "n_tokens", "unigram_loss", "unigram_curve_loss")


def _domain_results(run_dir: Path, target_domain: str) -> dict[str, dict[str, float]]:
    """Per domain: loss (nats/token), bits_per_byte, n_tokens and the unigram references,
    from `eval.json`."""
    path = run_dir / "eval.json"
    domains = get_field(read_record(path), "domains", path)
    if not isinstance(domains, dict):
        raise ValueError(f"{path}: key 'domains' must map domain names to results")
    get_field(domains, target_domain, path, "domains.")
    if len(domains) < 2:
        raise ValueError(f"{path}: key 'domains' needs the target and at least one other domain")
    return {
        name: {field: get_field(result, field, path, f"domains.{name}.") for field in DOMAIN_FIELDS}
        for name, result in domains.items()
    }


def _d2_mean(results: dict[str, dict[str, float]], target_domain: str, field: str) -> float:
    """Token-weighted mean of `field` over the non-target domains.

    For loss (nats/token) this is the pooled loss over all their test tokens. For bits_per_byte it
    is a token-weighted (not byte-weighted) mean, as eval.json records no byte counts.
    """
    others = [result for name, result in results.items() if name != target_domain]
    if len(others) == 1:  # exact copy; w * x / w may be off by one ulp
        return float(others[0][field])
    total = sum(float(result["n_tokens"]) for result in others)
    return sum(float(r["n_tokens"]) * float(r[field]) for r in others) / total


def _cell_row(
    run: RunSpec, results: dict[str, dict[str, float]], metrics: dict[str, Any], target_domain: str
) -> dict[str, Any]:
    """One row of the cells table: identity, D1/D2 summary, every domain, run metrics."""
    row: dict[str, Any] = {
        **cell_identity(run),
        "d1_test_loss": float(results[target_domain]["loss"]),
        "d2_test_loss": _d2_mean(results, target_domain, "loss"),
        "d1_bits_per_byte": float(results[target_domain]["bits_per_byte"]),
        "d2_bits_per_byte": _d2_mean(results, target_domain, "bits_per_byte"),
        "d1_unigram_loss": float(results[target_domain]["unigram_loss"]),
        "d2_unigram_loss": _d2_mean(results, target_domain, "unigram_loss"),
    }
    for name in sorted(results):
        row[f"test_loss_{name}"] = float(results[name]["loss"])
        row[f"bits_per_byte_{name}"] = float(results[name]["bits_per_byte"])
        row[f"unigram_loss_{name}"] = float(results[name]["unigram_loss"])
    metrics_path = Path(run[-1]) / "metrics.json"
    for key, dtype in METRIC_SCHEMA.items():
        value = get_field(metrics, key, metrics_path)
        row[key] = float(value) if dtype == pl.Float64 else int(value)
    return {**row, **_inherited(metrics, row["tokens_seen"], metrics_path)}


def _inherited(metrics: dict[str, Any], tokens_seen: int, path: Path) -> dict[str, Any]:
    """The COST_SCHEMA columns of one cell from metrics.json `inherited` (see COST_SCHEMA).

    tokens_seen counts inherited tokens too, so trained_tokens = tokens_seen - inherited tokens.
    """
    inherited = metrics.get("inherited")  # absent in runs made before trunks: from step 0
    if inherited is None:
        return {"inherited_tokens": 0, "trained_tokens": tokens_seen, "inherited_source": None}
    source = get_field(inherited, "source", path, "inherited.")
    if source not in INHERITED_SOURCES:
        raise ValueError(f"{path}: key 'inherited.source' is {source!r}, not one of trunk, cell")
    tokens = int(get_field(inherited, "tokens", path, "inherited."))
    if not 0 <= tokens <= tokens_seen:
        raise ValueError(f"{path}: key 'inherited.tokens' {tokens} is not in [0, {tokens_seen}]")
    return {
        "inherited_tokens": tokens,
        "trained_tokens": tokens_seen - tokens,
        "inherited_source": source,
    }


def _curve(run: RunSpec, results: dict[str, dict[str, float]], target_domain: str) -> pl.DataFrame:
    """One run's `curve.parquet` with the cell's identity, is_target and n_tokens added.

    n_tokens is the domain's full test-split token count from eval.json: the weight that pools
    several non-target domains into one D2 curve, as the cells table pools d2_test_loss.
    """
    ratio, schedule, arm, seed, run_dir = run
    path = Path(run_dir) / "curve.parquet"
    if not path.is_file():
        raise ValueError(f"{path}: missing file")
    curve = pl.read_parquet(path)
    for column in CURVE_SCHEMA:
        if column not in curve.columns:
            raise ValueError(f"{path}: missing key (column) {column!r}")
    n_tokens = {name: int(result["n_tokens"]) for name, result in results.items()}
    reference = {name: float(result["unigram_curve_loss"]) for name, result in results.items()}
    unknown = set(curve.get_column("domain").unique().to_list()) - set(n_tokens)
    if unknown:
        raise ValueError(f"{path}: domains {sorted(unknown)} are not in eval.json")
    return curve.select(
        pl.lit(ratio, pl.String).alias("ratio"),
        pl.lit(ratio_value(ratio), pl.Float64).alias("ratio_value"),
        pl.lit(schedule, pl.String).alias("schedule"),
        pl.lit(arm, pl.String).alias("arm"),
        pl.lit(seed, pl.Int64).alias("seed"),
        *[pl.col(name).cast(dtype) for name, dtype in CURVE_SCHEMA.items()],
        (pl.col("domain") == target_domain).alias("is_target"),
        pl.col("domain").replace_strict(n_tokens, return_dtype=pl.Int64).alias("n_tokens"),
        pl.col("domain").replace_strict(reference, return_dtype=pl.Float64).alias("unigram_loss"),
    )


def _exposure(run: RunSpec, metrics: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    """(exposure rows, one per domain; learning-rate rows, one per stretch of training)."""
    path = Path(run[-1]) / "metrics.json"
    identity = cell_identity(run)
    domains = [
        {**identity, "domain": name, **{key: stats[key] for key in EXPOSURE_KEYS}}
        for name, stats in get_field(metrics, "exposure", path).items()
    ]
    by_bin = get_field(metrics, "lr_by_bin", path)
    rates = [
        {**identity, "bin": i, "progress": i / len(by_bin), "lr_fraction": float(value)}
        for i, value in enumerate(by_bin)
    ]
    return domains, rates


EXPOSURE_KEYS = ("sequences", "token_share", "lr_weighted_share", "mean_lr", "mean_lr_fraction")


def collect_cells(runs: Sequence[RunSpec], target_domain: str) -> dict[str, pl.DataFrame]:
    """Read every cell's run directory into the tables cells, curves, exposure and lr_profile.

    cells: one row per cell, sorted by ratio_value, schedule, arm, seed; losses in nats/token;
    the run metrics of METRIC_SCHEMA and what it inherited and trained itself (COST_SCHEMA).
    curves: every curve.parquet stacked in that order, with ratio, ratio_value, schedule, arm,
    seed, is_target (domain == target_domain), n_tokens (the domain's test tokens in eval.json)
    and unigram_loss (the cell's unigram reference on the curve's blocks) added.
    exposure: per cell and domain, its sequences, token share, learning-rate-weighted share and
    mean learning rate (absolute and as a fraction of the peak). lr_profile: per cell, the mean
    learning rate (fraction of the peak) in each stretch of training (the barcode's axis).
    facts: per cell, what the comparability audit compares (analysis.audit.FACTS_SCHEMA).
    A missing file or key raises ValueError naming the file and the key.
    """
    ordered = check_runs(runs)
    results = [_domain_results(Path(run[-1]), target_domain) for run in ordered]  # each once
    metrics = [read_record(Path(run[-1]) / "metrics.json") for run in ordered]
    rows = [
        _cell_row(run, res, met, target_domain)
        for run, res, met in zip(ordered, results, metrics, strict=True)
    ]
    domain_sets = {tuple(key for key in row if key.startswith("test_loss_")) for row in rows}
    if len(domain_sets) > 1:
        # A cell evaluated on other domains would make its d2 columns mean something else.
        raise ValueError(f"collect_cells: runs were evaluated on different domains: {domain_sets}")
    identity = {
        "ratio": pl.String,
        "ratio_value": pl.Float64,
        "schedule": pl.String,
        "arm": pl.String,
        "seed": pl.Int64,
    }
    measured = {**identity, **METRIC_SCHEMA, **COST_SCHEMA}
    losses = {key: pl.Float64 for key in rows[0] if key not in measured}
    cells = pl.DataFrame(rows, schema={**identity, **losses, **METRIC_SCHEMA, **COST_SCHEMA})
    curves = pl.concat(
        [_curve(run, res, target_domain) for run, res in zip(ordered, results, strict=True)],
        how="vertical",
    )
    exposure, rates = [], []
    for run, met in zip(ordered, metrics, strict=True):
        domains, by_bin = _exposure(run, met)
        exposure += domains
        rates += by_bin
    return {
        "cells": cells,
        "curves": curves,
        "exposure": pl.DataFrame(exposure),
        "lr_profile": pl.DataFrame(rates),
        "facts": pl.DataFrame(list(map(run_facts, ordered, metrics)), schema=FACTS_SCHEMA),
    }


def _mean_interval(column: str) -> list[pl.Expr]:
    """<column>_mean, _std (ddof=1; null for one seed), _ci_low and _ci_high (95% t) per group."""
    std = pl.when(pl.len() > 1).then(pl.col(column).std(ddof=1))
    half = t_quantile(pl.len()) * std / pl.len().cast(pl.Float64).sqrt()
    return [
        pl.col(column).mean().alias(f"{column}_mean"),
        std.alias(f"{column}_std"),
        (pl.col(column).mean() - half).alias(f"{column}_ci_low"),
        (pl.col(column).mean() + half).alias(f"{column}_ci_high"),
    ]


def summarise(cells: pl.DataFrame) -> pl.DataFrame:
    """Per (ratio, schedule, arm): n_seeds, mean, sample std (ddof=1) and 95% t-interval of the
    mean of D1 and D2 test loss, and the mean of their unigram references; the same four for
    the `objective` (analysis.domains) when cells carry it, last.

    Losses in nats/token. std is null when a group has one seed: a spread from one run is unknown,
    not zero. Sorted by ratio_value, schedule, arm.
    """
    stats = []
    for column in ("d1_test_loss", "d2_test_loss"):
        stats += _mean_interval(column)
    for column in ("d1_unigram_loss", "d2_unigram_loss"):
        stats.append(pl.col(column).mean().alias(f"{column}_mean"))
    if "objective" in cells.columns:
        stats += _mean_interval("objective")
    group = ["ratio", "schedule", "arm"]
    return (
        cells.group_by(group)
        .agg(
            pl.col("ratio_value").first(),
            pl.len().cast(pl.Int64).alias("n_seeds"),
            *stats,
        )
        .select(
            "ratio",
            "ratio_value",
            "schedule",
            "arm",
            "n_seeds",
            *[s.meta.output_name() for s in stats],
        )
        .sort("ratio_value", "schedule", "arm")
    )


def write_tables(tables: dict[str, pl.DataFrame], out_dir: Path) -> list[Path]:
    """Write each table as `<name>.parquet` and `<name>.csv` in out_dir; returns the paths.

    Each file is written beside its final name and renamed into place, so a crash never leaves a
    half-written table that a later stage could read.
    """
    out_dir = Path(out_dir)
    written: list[Path] = []
    for name, table in tables.items():
        if not name or Path(name).name != name:
            raise ValueError(f"write_tables: table name {name!r} must be a plain file stem")
        for suffix in (".parquet", ".csv"):
            final = out_dir / f"{name}{suffix}"
            with atomic_path(final) as tmp:
                if suffix == ".parquet":
                    table.write_parquet(tmp)
                else:
                    table.write_csv(tmp)
            written.append(final)
    return written


def collect_streams(runs: Sequence[StreamSpec]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Read every cell's stream summary into (barcodes, stream_domains).

    runs are (ratio, schedule, seed, summary_path). barcodes: one row per cell and stretch of
    training: bin, progress (start of the stretch, fraction of training), target_share.
    stream_domains: one row per cell and domain: blocks_used, unique/repeated blocks and
    tokens, max_epoch (0 when no block repeats).
    """
    bars, domains = [], []
    for ratio, schedule, seed, path in check_runs(runs):
        summary = read_record(Path(path))
        identity = {
            "ratio": ratio,
            "ratio_value": ratio_value(ratio),
            "schedule": schedule,
            "seed": seed,
        }
        shares = get_field(summary, "target_share_by_bin", Path(path))
        bars += [
            {**identity, "bin": i, "progress": i / len(shares), "target_share": float(share)}
            for i, share in enumerate(shares)
        ]
        for name, stats in get_field(summary, "domains", Path(path)).items():
            domains.append(
                {
                    **identity,
                    "domain": name,
                    **{
                        key: int(get_field(stats, key, Path(path), f"domains.{name}."))
                        for key in STREAM_DOMAIN_KEYS
                    },
                }
            )
    return pl.DataFrame(bars), pl.DataFrame(domains)


STREAM_DOMAIN_KEYS = (
    "blocks_used",
    "unique_blocks",
    "repeated_blocks",
    "unique_tokens",
    "repeated_tokens",
    "max_epoch",
)
