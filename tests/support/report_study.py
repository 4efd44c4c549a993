"""The synthetic studies the report tests render: builders, and helpers that read a page.

The default study is a two-domain one (code, the target, against web) and crosses 2 ratios x
3 schedules x 2 learning-rate arms x 3 seeds; `named_study` is a three-domain study with a
utility and concentrate schedules, read domain by domain. Their domain orders, exposure and
learning-rate profiles come from the real `curriculab.training.lr` functions; their losses decay
exponentially from ln(vocab) to a floor well below each cell's unigram reference; the tables
the report reads are made by the real `analyse_objective`, `summarise` and `reference_table`,
as the aggregate step makes them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from curriculab.analysis.aggregate import summarise
from curriculab.analysis.audit import annotate, with_estimates
from curriculab.analysis.domains import analyse_objective, weights_table
from curriculab.analysis.references import DEFAULT_MARGIN, reference_table
from curriculab.report.data import data_table
from curriculab.report.html import render_report
from curriculab.training.lr import arm_description, exposure, lr_by_bin, lr_per_position

CHART_IDS = (
    "chart-barcodes",
    "chart-d1-curves",
    "chart-d2-curves",
    "chart-final-loss",
    "chart-paired",
    "chart-h2",
)
SCHEDULES = ("shuffled", "d1_last", "d1_first")
# How much a schedule leaves D1 loss above the best final value (nats/token): a plausible shape.
D1_PENALTY = {"shuffled": 0.10, "d1_last": 0.0, "d1_first": 0.25}
# The schedules as the aggregate step's params give them (name -> spec).
SCHEDULE_SPECS: dict[str, dict[str, Any]] = {
    "shuffled": {"family": "shuffled"},
    "d1_last": {"family": "sequential", "order": ["web", "code"]},
    "d1_first": {"family": "sequential", "order": ["code", "web"]},
    **{
        f"concentrate_{d}": {"family": "concentrate", "domain": d} for d in ("code", "web", "books")
    },
}
# The named study: what concentrating each domain does to each domain's final loss (nats/token),
# and its utility. The objective (0.5 code + 0.3 web + 0.2 books) falls by 0.125 when code is
# concentrated (keep it for the end), rises by 0.14 for web (spread it), does not move for books.
CONCENTRATE_EFFECT = {
    "concentrate_code": {"code": -0.3, "web": 0.05, "books": 0.05},
    "concentrate_web": {"code": 0.3, "web": -0.1, "books": 0.1},
    "concentrate_books": {},
}
NAMED_UTILITY = {"weights": {"code": 0.5, "web": 0.3, "books": 0.2}}
# Unigram reference per domain (nats/token): what a model of token frequencies alone reaches.
UNIGRAM = {"code": 5.2, "web": 5.8, "books": 5.9}
TEST_TOKENS = {"code": 4000, "web": 3000, "books": 1000}  # test-split tokens: D2 pooling weights
POSITIONS, BATCH, BINS = 2000, 4, 50  # sequences per stream, per step; barcode stretches


@dataclass(frozen=True)
class Arm:
    """The learning-rate fields of a TrainConfig (`curriculab.training.lr.LRSettings`)."""

    lr_schedule: str
    decay_start: str = "fixed"
    lr: float = 3e-3
    warmup_fraction: float = 0.05
    min_lr_fraction: float = 0.1
    decay_fraction: float = 0.2


ARMS = {"constant": Arm("constant"), "wsd_window": Arm("wsd", decay_start="window")}
# The cooldown of wsd_window lowers every final loss a little (nats/token).
ARM_BONUS = {"constant": 0.0, "wsd_window": 0.08}


def synthetic_study(
    ratios: tuple[str, ...] = ("0.05", "0.2"),
    seeds: tuple[int, ...] = (0, 1, 2),
    domains: tuple[str, ...] = ("code", "web"),
) -> dict[str, Any]:
    """A study dict as the pipeline passes it: by default the two-domain study (D1 and D2); give
    three domains to exercise D2 pooling in the charts (the page then reads domain by domain)."""
    return {
        "name": "tiny <order> & mix",
        "target_domain": "code",
        "domains": list(domains),
        "ratios": list(ratios),
        "schedules": list(SCHEDULES),
        "arms": {name: arm_description(arm) for name, arm in ARMS.items()},
        "baseline": "shuffled",
        "seeds": list(seeds),
        "model_preset": "tiny",
    }


def named_study(seeds: tuple[int, ...] = (0, 1, 2, 3, 4)) -> dict[str, Any]:
    """Three domains, a stated utility, and one concentrate schedule per domain: the study the
    report reads domain by domain, with a fine-tuning section."""
    study = synthetic_study(seeds=seeds, domains=("code", "web", "books"))
    study["schedules"] = ["shuffled", *CONCENTRATE_EFFECT]
    study["utility"] = NAMED_UTILITY
    study["objective"] = "the utility-weighted test loss (weights books 0.2, code 0.5, web 0.3)"
    return study


def _natural(ratio: str) -> float:
    """D1's share of the stream at D1/D2 ratio `ratio`."""
    return float(ratio) / (1 + float(ratio))


def stream_order(ratio: str, schedule: str, seed: int, n_domains: int = 3) -> np.ndarray:
    """(POSITIONS,) domain index per sequence: 0 = code (D1), 1 = web, 2 = books (3:1 when
    there are three domains). concentrate_<domain> moves all of that domain to the end."""
    rng = np.random.default_rng([seed, int(1000 * float(ratio)), len(schedule)])
    n_d1 = round(_natural(ratio) * POSITIONS)
    d1 = np.zeros(POSITIONS, dtype=bool)
    if schedule == "d1_last":
        d1[POSITIONS - n_d1 :] = True
    elif schedule == "d1_first":
        d1[:n_d1] = True
    else:
        d1[rng.permutation(POSITIONS)[:n_d1]] = True
    d2 = np.where(rng.random(POSITIONS) < 0.75, 1, 2) if n_domains > 2 else 1
    order = np.where(d1, 0, d2)
    if schedule.startswith("concentrate_"):
        k = ["code", "web", "books"].index(schedule.removeprefix("concentrate_"))
        order = np.concatenate([order[order != k], order[order == k]])
    return order


def _window_start(ratio: str, schedule: str) -> float | None:
    """Where the schedule's final D1 window starts (fraction of training); None without one."""
    return 1 - _natural(ratio) if schedule == "d1_last" else None


def _identity(ratio: str, schedule: str, arm: str, seed: int) -> dict[str, Any]:
    """A cell's identity columns, as every table carries them."""
    return {
        "ratio": ratio,
        "ratio_value": float(ratio),
        "schedule": schedule,
        "arm": arm,
        "seed": seed,
    }


def synthetic_exposure(study: dict[str, Any]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(exposure, lr_profile) per cell, as collect_cells reads them from metrics.json."""
    names = study["domains"]
    exposure_rows, profile_rows = [], []
    for ratio in study["ratios"]:
        for schedule in study["schedules"]:
            for arm in study["arms"]:
                cfg = ARMS[arm]
                lrs = lr_per_position(POSITIONS, BATCH, cfg, _window_start(ratio, schedule))
                for seed in study["seeds"]:
                    cell = _identity(ratio, schedule, arm, seed)
                    order = stream_order(ratio, schedule, seed, len(names))
                    for name, stats in exposure(order, names, lrs, cfg.lr).items():
                        exposure_rows.append({**cell, "domain": name, **stats})
                    for i, value in enumerate(lr_by_bin(lrs, cfg.lr, BINS)):
                        profile_rows.append(
                            {**cell, "bin": i, "progress": i / BINS, "lr_fraction": value}
                        )
    return pl.DataFrame(exposure_rows), pl.DataFrame(profile_rows)


def synthetic_tables(
    study: dict[str, Any], stalled: tuple[str, str, str] | None = None
) -> dict[str, pl.DataFrame]:
    """cells, curves, exposure and lr_profile; losses decay exponentially from ln(vocab).

    stalled: a (ratio, schedule, arm) group whose D1 loss ends only 0.04 nats/token below its
    unigram reference: a model that learned token frequencies and little more.
    """
    rng = np.random.default_rng(0)
    steps = np.arange(0, 11) * 100
    target = study["target_domain"]
    weights = {d: TEST_TOKENS.get(d, 1000) for d in study["domains"]}
    cell_rows, curve_rows = [], []
    for ratio in study["ratios"]:
        for schedule in study["schedules"]:
            for arm in study["arms"]:
                for seed in study["seeds"]:
                    cell = _identity(ratio, schedule, arm, seed)
                    final, reference = {}, {}
                    for domain in study["domains"]:
                        is_target = domain == target
                        reference[domain] = UNIGRAM.get(domain, 5.5) + rng.normal(0, 0.01)
                        penalty = D1_PENALTY.get(schedule, D1_PENALTY["shuffled"])
                        floor = 3.0 + (penalty - float(ratio) if is_target else 0.5)
                        floor += CONCENTRATE_EFFECT.get(schedule, {}).get(domain, 0.0)
                        floor += rng.normal(0, 0.02) - ARM_BONUS.get(arm, 0.0)
                        if is_target and stalled == (ratio, schedule, arm):
                            floor = reference[domain] - 0.04
                        loss = floor + (math.log(8192) - floor) * np.exp(-steps / 250)
                        final[domain] = float(loss[-1])
                        curve_rows += [
                            {
                                **cell,
                                "step": int(step),
                                "tokens_seen": int(step) * 4096,
                                "domain": domain,
                                "loss": float(value),
                                "bits_per_byte": float(value) / math.log(2) / 4,
                                "is_target": is_target,
                                "n_tokens": weights[domain],
                                "unigram_loss": reference[domain],
                            }
                            for step, value in zip(steps, loss, strict=True)
                        ]
                    d2 = [d for d in study["domains"] if d != target]
                    d2_weights = [weights[d] for d in d2]
                    cell_rows.append(
                        {
                            **cell,
                            "d1_test_loss": final[target],
                            "d2_test_loss": float(
                                np.average([final[d] for d in d2], weights=d2_weights)
                            ),
                            "d1_unigram_loss": reference[target],
                            "d2_unigram_loss": float(
                                np.average([reference[d] for d in d2], weights=d2_weights)
                            ),
                            **{f"test_loss_{d}": final[d] for d in study["domains"]},
                            **{f"unigram_loss_{d}": reference[d] for d in study["domains"]},
                            "tokens_seen": int(steps[-1]) * 4096,
                            "wall_seconds": 30.0 + rng.random(),
                            "tokens_per_second": 15000.0 + rng.random(),
                        }
                    )
    exposure_table, lr_profile = synthetic_exposure(study)
    return {
        "cells": pl.DataFrame(cell_rows),
        "curves": pl.DataFrame(curve_rows),
        "exposure": exposure_table,
        "lr_profile": lr_profile,
    }


def synthetic_barcodes(study: dict[str, Any]) -> pl.DataFrame:
    """D1 share per stretch of training of every stream (no arm: the arms share a stream)."""
    rows = []
    k = len(study["domains"])
    for ratio in study["ratios"]:
        for schedule in study["schedules"]:
            for seed in study["seeds"]:
                order = stream_order(ratio, schedule, seed, k)
                shares = (order == 0).reshape(BINS, -1).mean(axis=1)
                rows += [
                    {
                        "ratio": ratio,
                        "ratio_value": float(ratio),
                        "schedule": schedule,
                        "seed": seed,
                        "bin": i,
                        "progress": i / BINS,
                        "target_share": float(share),
                    }
                    for i, share in enumerate(shares)
                ]
    return pl.DataFrame(rows)


def synthetic_domain_barcodes(study: dict[str, Any]) -> pl.DataFrame:
    """Every domain's share per stretch of training of every stream (domain_barcodes)."""
    rows = []
    names = study["domains"]
    for ratio in study["ratios"]:
        for schedule in study["schedules"]:
            for seed in study["seeds"]:
                order = stream_order(ratio, schedule, seed, len(names)).reshape(BINS, -1)
                for k, domain in enumerate(names):
                    rows += [
                        {"ratio": ratio, "ratio_value": float(ratio), "schedule": schedule,
                         "seed": seed, "domain": domain, "bin": i, "progress": i / BINS,
                         "share": float(share)}
                        for i, share in enumerate((order == k).mean(axis=1))
                    ]  # fmt: skip
    return pl.DataFrame(rows)


def report_tables(
    collected: dict[str, pl.DataFrame],
    study: dict[str, Any],
    comparisons: pl.DataFrame | None = None,
) -> dict:
    """The tables the aggregate step hands the report (workflow/scripts/aggregate.py); with
    the audit's `comparisons` (analysis.audit), the verdicts are drawn against each schedule's
    control, carry its audit line, and the comparisons gain their estimates."""
    barcodes = synthetic_barcodes(study)
    domain_barcodes = synthetic_domain_barcodes(study)
    blocks = {d: MANIFEST_SPLITS[d]["train"][2] for d in study["domains"]}
    utility = study.get("utility")
    weights = weights_table(
        utility, study["domains"], study["target_domain"], study["ratios"], blocks
    )
    params = {
        "utility": utility,
        "domains": study["domains"],
        "target": study["target_domain"],
        "baseline": study["baseline"],
        "schedules": {name: SCHEDULE_SPECS[name] for name in study["schedules"]},
    }
    tables = analyse_objective(collected, barcodes, domain_barcodes, weights, params, comparisons)
    if comparisons is not None:
        for name in ("verdicts", "domain_verdicts", "finetune"):
            tables[name] = annotate(tables[name], comparisons)
        tables["comparisons"] = with_estimates(comparisons, tables["cells"], study["baseline"])
    return {
        **collected,
        **tables,
        "summary": summarise(tables["cells"]),
        "references": reference_table(tables["cells"], study["domains"], DEFAULT_MARGIN),
        "barcodes": barcodes,
        "domain_barcodes": domain_barcodes,
        "weights": weights,
    }


# Documents and tokens per domain and split, as a shard manifest counts them: token counts of
# every size, so the data table shows each way a count is written (950, 25.8k, 270k, 1.23M).
MANIFEST_SPLITS = {
    "code": {"train": (812, 1_234_567, 2411), "test": (97, 269_952, 527)},
    "web": {"train": (3105, 8_765_432, 17_120), "test": (40, 25_800, 50)},
    "books": {"train": (12, 950_000, 1855), "test": (1, 950, 1)},
}


def synthetic_data(study: dict[str, Any], root: Path) -> pl.DataFrame:
    """The report's data table, made by the real `data_table` from manifests written to root."""
    manifests = []
    for domain in study["domains"]:
        splits = {
            split: {"n_docs": docs, "n_tokens": n_tokens, "n_blocks": blocks}
            for split, (docs, n_tokens, blocks) in MANIFEST_SPLITS[domain].items()
        }
        manifests.append(root / domain / "manifest.json")
        manifests[-1].parent.mkdir(parents=True, exist_ok=True)
        manifests[-1].write_text(json.dumps({"splits": splits}), encoding="utf-8")
    stream_domains = pl.DataFrame(
        [
            {
                "ratio": ratio,
                "ratio_value": float(ratio),
                "seed": seed,
                "domain": domain,
                "unique_blocks": round(float(ratio) * 2000) if domain == "code" else 1500,
            }
            for ratio in study["ratios"]
            for seed in study["seeds"]
            for domain in study["domains"]
        ]
    )
    return data_table(study["domains"], manifests, stream_domains)


def render(
    tmp_path: Path,
    study: dict[str, Any] | None = None,
    stalled: tuple[str, str, str] | None = None,
    **extra: pl.DataFrame,
) -> tuple[Path, dict[str, pl.DataFrame]]:
    """Render the synthetic report, with its data section and any `extra` optional tables
    (harness_summary=...); returns its path and the tables it was given."""
    study = study or synthetic_study()
    tables = report_tables(synthetic_tables(study, stalled), study)
    tables["data"] = synthetic_data(study, tmp_path / "shards")
    tables.update(extra)
    out = tmp_path / "reports" / "report.html"
    render_report(tables, study, out)
    return out, tables
