"""The stream file of a cell: Arrow IPC with one row per training sequence, plus its summary."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from curriculab.data.shards import block_counts
from curriculab.io import atomic_path, read_arrow, write_arrow, write_json
from curriculab.streams.build import Order, build_order, build_trunk_order
from curriculab.streams.schedules import BudgetSpec, ScheduleError
from curriculab.streams.summary import summarise_order


def stream_table(names: list[str], order: Order) -> pa.Table:
    """The stream as Arrow: domain (dictionary-encoded name), block, epoch."""
    domain = pa.DictionaryArray.from_arrays(
        pa.array(order.domains, pa.int32()), pa.array(names, pa.string())
    )
    return pa.table(
        {
            "domain": domain,
            "block": pa.array(order.blocks, pa.int64()),
            "epoch": pa.array(order.epochs, pa.int32()),
        }
    )


def write_stream(
    manifests: dict[str, dict[str, Any]],
    target: str,
    ratio: float,
    schedule: str,
    spec: dict[str, Any],
    seed: int,
    budget: BudgetSpec,
    out_path: str | Path,
    summary_path: str | Path,
) -> dict[str, Any]:
    """Build one cell's stream from shard manifests; write Arrow IPC and a JSON summary."""
    train_blocks = block_counts(manifests, "train")
    names, order = build_order(train_blocks, target, ratio, schedule, spec, seed, budget)
    identity = {"ratio": ratio, "schedule": schedule, "spec": spec, "seed": seed}
    return _write(names, order, manifests[target]["seq_len"], target, identity | {
        "budget": budget.kind}, out_path, summary_path)  # fmt: skip


def write_trunk_stream(
    manifests: dict[str, dict[str, Any]],
    target: str,
    ratio: float,
    trunk: str,
    base_d1_share: float | None,
    seed: int,
    budget: BudgetSpec,
    out_path: str | Path,
    summary_path: str | Path,
) -> dict[str, Any]:
    """The stream of a trunk (streams.prefix) and its summary."""
    train_blocks = block_counts(manifests, "train")
    names, order = build_trunk_order(
        train_blocks, target, ratio, trunk, base_d1_share, seed, budget
    )
    identity = {"ratio": ratio, "trunk": trunk, "seed": seed, "budget": budget.kind}
    return _write(names, order, manifests[target]["seq_len"], target, identity, out_path,
                  summary_path)  # fmt: skip


def _write(
    names: list[str], order: Order, seq_len: int, target: str, identity: dict[str, Any],
    out_path: str | Path, summary_path: str | Path,
) -> dict[str, Any]:  # fmt: skip
    """Write a stream (Arrow IPC) and its JSON summary, with `identity` added; the summary."""
    write_arrow(stream_table(names, order), out_path)
    summary = summarise_order(names, order, target, seq_len) | identity
    write_json(summary_path, summary)
    return summary


def read_stream(path: str | Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Read a stream: (domain names, per-position domain index, per-position block index)."""
    table = read_arrow(path).combine_chunks()
    domain = table["domain"].chunk(0)
    names = domain.dictionary.to_pylist()
    return names, domain.indices.to_numpy().astype(np.int64), table["block"].to_numpy()


def write_matched_stream(
    base_stream: str | Path,
    base_summary: dict[str, Any],
    lr_summary: dict[str, Any],
    name: str,
    out_path: str | Path,
    summary_path: str | Path,
) -> dict[str, Any]:
    """A matched control's stream (analysis.controls): a copy of the baseline's file (the same
    bytes, so a pack shares their prefix), with a summary
    that is the baseline's but for `window_start`, the treatment's, which sets only the
    learning rate (a WSD cooldown that starts at the window)."""
    if lr_summary["n_sequences"] != base_summary["n_sequences"]:
        raise ScheduleError(
            f"matched control {name!r} cannot be built: schedule {lr_summary['schedule']!r} "
            f"trains {lr_summary['n_sequences']} sequences and the baseline "
            f"{base_summary['schedule']!r} {base_summary['n_sequences']}, so no learning-rate "
            "curve of one fits the other step for step; give both the same length or set "
            "analysis.audit.matched_controls: false (its comparisons then get no verdict)"
        )
    out_path = Path(out_path)
    with atomic_path(out_path) as tmp:  # a copy: a hard link would share mtimes with the
        shutil.copyfile(base_stream, tmp)  # baseline's stream, which Snakemake compares
    summary = base_summary | {
        "schedule": name,
        "order_of": base_summary["schedule"],
        "lr_from": lr_summary["schedule"],
        "window_start": lr_summary["window_start"],
    }
    write_json(summary_path, summary)
    return summary
