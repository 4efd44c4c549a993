"""Gather every cell's run outputs into tidy polars tables: one row per cell, curves, a summary.

A cell is one (ratio, schedule, seed) training run. Its run directory holds `eval.json` (final test
loss per domain), `metrics.json` (throughput and size) and `curve.parquet` (test loss during
training). D1 is the target domain; D2 is the only other domain or, when there are several, their
token-weighted mean, so "d2" always means "everything that is not the target".
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from curriculab.analysis.statistics import t_quantile
from curriculab.io import atomic_path

RunSpec = tuple[str, str, int, Path]
"""(ratio label, schedule name, seed, run directory) of one cell."""

METRIC_SCHEMA: dict[str, type[pl.DataType]] = {
    "tokens_seen": pl.Int64,  # training tokens consumed by the run
    "steps": pl.Int64,  # optimiser steps
    "tokens_per_second": pl.Float64,  # training throughput
    "n_params": pl.Int64,  # model parameters
    "wall_seconds": pl.Float64,  # training wall-clock time
}
CURVE_SCHEMA: dict[str, type[pl.DataType]] = {
    "step": pl.Int64,
    "tokens_seen": pl.Int64,
    "domain": pl.String,
    "loss": pl.Float64,  # nats/token
    "bits_per_byte": pl.Float64,
}
CELL_KEYS = ["ratio_value", "schedule", "seed"]


def _read_json(path: Path) -> dict[str, Any]:
    """Load a JSON object, naming the file in the error when it is absent or malformed."""
    if not path.is_file():
        raise ValueError(f"{path}: missing file")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(payload, dict):
        raise ValueError(f"{path}: expected a JSON object at the top level")
    return payload


def _get(mapping: Any, key: str, path: Path, where: str = "") -> Any:
    """`mapping[key]`, or a one-line ValueError naming the file and the dotted key path."""
    if not isinstance(mapping, dict) or key not in mapping:
        raise ValueError(f"{path}: missing key {where + key!r}")
    return mapping[key]


def _ratio_value(ratio: str) -> float:
    """Parse a ratio label such as "0.05" (D1 train blocks per D2 train block)."""
    try:
        value = float(ratio)
    except ValueError:
        raise ValueError(f"ratio {ratio!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"ratio {ratio!r} is not finite")
    return value


def _domain_results(run_dir: Path, target_domain: str) -> dict[str, dict[str, float]]:
    """Per domain: loss (nats/token), bits_per_byte and n_tokens, from `eval.json`."""
    path = run_dir / "eval.json"
    domains = _get(_read_json(path), "domains", path)
    if not isinstance(domains, dict):
        raise ValueError(f"{path}: key 'domains' must map domain names to results")
    _get(domains, target_domain, path, "domains.")
    if len(domains) < 2:
        raise ValueError(f"{path}: key 'domains' needs the target and at least one other domain")
    return {
        name: {
            field: _get(result, field, path, f"domains.{name}.")
            for field in ("loss", "bits_per_byte", "n_tokens")
        }
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
    run: RunSpec, results: dict[str, dict[str, float]], target_domain: str
) -> dict[str, Any]:
    """One row of the cells table: identity, D1/D2 summary, every domain, run metrics."""
    ratio, schedule, seed, run_dir = run
    row: dict[str, Any] = {
        "ratio": ratio,
        "ratio_value": _ratio_value(ratio),
        "schedule": schedule,
        "seed": seed,
        "d1_test_loss": float(results[target_domain]["loss"]),
        "d2_test_loss": _d2_mean(results, target_domain, "loss"),
        "d1_bits_per_byte": float(results[target_domain]["bits_per_byte"]),
        "d2_bits_per_byte": _d2_mean(results, target_domain, "bits_per_byte"),
    }
    for name in sorted(results):
        row[f"test_loss_{name}"] = float(results[name]["loss"])
        row[f"bits_per_byte_{name}"] = float(results[name]["bits_per_byte"])
    metrics_path = Path(run_dir) / "metrics.json"
    metrics = _read_json(metrics_path)
    for key, dtype in METRIC_SCHEMA.items():
        value = _get(metrics, key, metrics_path)
        row[key] = float(value) if dtype == pl.Float64 else int(value)
    return row


def _curve(run: RunSpec, results: dict[str, dict[str, float]], target_domain: str) -> pl.DataFrame:
    """One run's `curve.parquet` with the cell's identity, is_target and n_tokens added.

    n_tokens is the domain's full test-split token count from eval.json: the weight that pools
    several non-target domains into one D2 curve, as the cells table pools d2_test_loss.
    """
    ratio, schedule, seed, run_dir = run
    path = Path(run_dir) / "curve.parquet"
    if not path.is_file():
        raise ValueError(f"{path}: missing file")
    curve = pl.read_parquet(path)
    for column in CURVE_SCHEMA:
        if column not in curve.columns:
            raise ValueError(f"{path}: missing key (column) {column!r}")
    n_tokens = {name: int(result["n_tokens"]) for name, result in results.items()}
    unknown = set(curve.get_column("domain").unique().to_list()) - set(n_tokens)
    if unknown:
        raise ValueError(f"{path}: domains {sorted(unknown)} are not in eval.json")
    return curve.select(
        pl.lit(ratio, pl.String).alias("ratio"),
        pl.lit(_ratio_value(ratio), pl.Float64).alias("ratio_value"),
        pl.lit(schedule, pl.String).alias("schedule"),
        pl.lit(seed, pl.Int64).alias("seed"),
        *[pl.col(name).cast(dtype) for name, dtype in CURVE_SCHEMA.items()],
        (pl.col("domain") == target_domain).alias("is_target"),
        pl.col("domain").replace_strict(n_tokens, return_dtype=pl.Int64).alias("n_tokens"),
    )


def _check_runs(runs: Sequence[RunSpec]) -> list[RunSpec]:
    """Runs in table order; refuses an empty list and repeated cells, which would double-count."""
    if not runs:
        raise ValueError("collect_cells: no runs given")
    seen: set[tuple[str, str, int]] = set()
    for ratio, schedule, seed, _ in runs:
        if (ratio, schedule, seed) in seen:
            raise ValueError(f"collect_cells: cell ({ratio}, {schedule}, seed {seed}) given twice")
        seen.add((ratio, schedule, seed))
    return sorted(runs, key=lambda run: (_ratio_value(run[0]), run[1], run[2]))


def collect_cells(runs: Sequence[RunSpec], target_domain: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Read every cell's run directory into (cells, curves).

    cells: one row per cell, sorted by ratio_value, schedule, seed; losses in nats/token.
    curves: every curve.parquet stacked in that order, with ratio, ratio_value, schedule, seed,
    is_target (domain == target_domain) and n_tokens (the domain's test tokens in eval.json) added.
    A missing file or key raises ValueError naming the file and the key.
    """
    ordered = _check_runs(runs)
    results = [_domain_results(Path(run[3]), target_domain) for run in ordered]  # eval.json once
    rows = [_cell_row(run, res, target_domain) for run, res in zip(ordered, results, strict=True)]
    domain_sets = {tuple(key for key in row if key.startswith("test_loss_")) for row in rows}
    if len(domain_sets) > 1:
        # A cell evaluated on other domains would make its d2 columns mean something else.
        raise ValueError(f"collect_cells: runs were evaluated on different domains: {domain_sets}")
    identity = {
        "ratio": pl.String,
        "ratio_value": pl.Float64,
        "schedule": pl.String,
        "seed": pl.Int64,
    }
    losses = {
        key: pl.Float64 for key in rows[0] if key not in identity and key not in METRIC_SCHEMA
    }
    cells = pl.DataFrame(rows, schema={**identity, **losses, **METRIC_SCHEMA})
    curves = pl.concat(
        [_curve(run, res, target_domain) for run, res in zip(ordered, results, strict=True)],
        how="vertical",
    )
    return cells, curves


def summarise(cells: pl.DataFrame) -> pl.DataFrame:
    """Per (ratio, schedule): n_seeds, mean, sample std (ddof=1) and 95% t-interval of the mean
    of D1 and D2 test loss.

    Losses in nats/token. std is null when a group has one seed: a spread from one run is unknown,
    not zero. Sorted by ratio_value, then schedule.
    """
    stats = []
    for column in ("d1_test_loss", "d2_test_loss"):
        std = pl.when(pl.len() > 1).then(pl.col(column).std(ddof=1))
        half = t_quantile(pl.len()) * std / pl.len().cast(pl.Float64).sqrt()
        stats.append(pl.col(column).mean().alias(f"{column}_mean"))
        stats.append(std.alias(f"{column}_std"))
        stats.append((pl.col(column).mean() - half).alias(f"{column}_ci_low"))
        stats.append((pl.col(column).mean() + half).alias(f"{column}_ci_high"))
    return (
        cells.group_by("ratio", "schedule")
        .agg(
            pl.col("ratio_value").first(),
            pl.len().cast(pl.Int64).alias("n_seeds"),
            *stats,
        )
        .select(
            "ratio", "ratio_value", "schedule", "n_seeds", *[s.meta.output_name() for s in stats]
        )
        .sort("ratio_value", "schedule")
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


def collect_streams(runs: Sequence[RunSpec]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Read every cell's stream summary into (barcodes, stream_domains).

    runs are (ratio, schedule, seed, summary_path). barcodes: one row per cell and stretch of
    training: bin, progress (start of the stretch, fraction of training), target_share.
    stream_domains: one row per cell and domain: blocks_used, unique/repeated blocks and
    tokens, max_epoch (0 when no block repeats).
    """
    bars, domains = [], []
    for ratio, schedule, seed, path in _check_runs(runs):
        summary = _read_json(Path(path))
        identity = {
            "ratio": ratio,
            "ratio_value": _ratio_value(ratio),
            "schedule": schedule,
            "seed": seed,
        }
        shares = _get(summary, "target_share_by_bin", Path(path))
        bars += [
            {**identity, "bin": i, "progress": i / len(shares), "target_share": float(share)}
            for i, share in enumerate(shares)
        ]
        for name, stats in _get(summary, "domains", Path(path)).items():
            domains.append(
                {
                    **identity,
                    "domain": name,
                    **{
                        key: int(_get(stats, key, Path(path), f"domains.{name}."))
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
