"""Shared by several test files (moved out of them so that no test imports another)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

TARGET = "code"


def fake_losses(ratio: str, schedule: str, seed: int, domains: list[str]) -> dict[str, dict]:
    """eval.json `domains` payload whose numbers depend on every part of the cell's identity."""
    offset = float(ratio) + 0.1 * len(schedule) + 0.01 * seed
    return {
        name: {
            "loss": 3.0 + offset + 0.5 * index,
            "bits_per_byte": 1.0 + offset / 3 + 0.1 * index,
            "n_tokens": 1000 * (index + 1) + 7 * index * index,
            "unigram_loss": 6.0 + offset + 0.5 * index,
            "unigram_curve_loss": 6.1 + offset + 0.5 * index,
        }
        for index, name in enumerate(domains)
    }


def write_run(
    root: Path,
    ratio: str,
    schedule: str,
    seed: int,
    domains: list[str],
    arm: str = "cosine",
    inherited: dict | None = None,
) -> tuple[str, str, str, int, Path]:
    """A run directory with eval.json, metrics.json and curve.parquet; returns its run spec.
    inherited: metrics.json's `inherited` (the prefix it resumed from); None leaves it out."""
    run_dir = root / ratio / schedule / arm / f"seed{seed}"
    run_dir.mkdir(parents=True)
    losses = fake_losses(ratio, schedule, seed, domains)
    (run_dir / "eval.json").write_text(json.dumps({"domains": losses}))
    metrics = {
        "tokens_seen": 4096 * (seed + 10),
        "steps": seed + 10,
        "tokens_per_second": 1234.5 + seed,
        "n_params": 98765,
        "wall_seconds": 3.25 * (seed + 1),
        "flops_per_token": 6.0e5 + seed,
        "device": "cpu",
        "unknown_key": [1, 2],  # must be ignored
        "exposure": {
            name: {
                "sequences": 10 * (index + 1),
                "token_share": 0.25 + 0.5 * index,
                "lr_weighted_share": 0.2 + 0.6 * index,
                "mean_lr": 0.001 * (seed + 1),
                "mean_lr_fraction": 0.5 + 0.1 * index,
            }
            for index, name in enumerate(domains)
        },
        "lr_by_bin": [1.0, 0.75, 0.5, 0.25],
    }
    if inherited is not None:
        metrics["inherited"] = inherited
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    steps = [0, 5, seed + 10]
    pl.DataFrame(
        {
            "step": [s for s in steps for _ in domains],
            "tokens_seen": [4096 * s for s in steps for _ in domains],
            "domain": [d for _ in steps for d in domains],
            "loss": [9.0 - s / 10 + i for s in steps for i, _ in enumerate(domains)],
            "bits_per_byte": [3.0 - s / 100 + i for s in steps for i, _ in enumerate(domains)],
        }
    ).write_parquet(run_dir / "curve.parquet")
    return ratio, schedule, arm, seed, run_dir


def make_runs(root: Path, domains: list[str], seeds: tuple[int, ...] = (0, 1, 2)) -> list:
    """A grid given deliberately out of order, with labels that sort wrongly as strings."""
    return [
        write_run(root, ratio, schedule, seed, domains, arm)
        for ratio in ("0.5", "10", "0.10", "2", "0.05")
        for schedule in ("shuffled", "d1_last")
        for arm in ("wsd", "constant")
        for seed in reversed(seeds)
    ]
