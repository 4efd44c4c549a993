"""Build the stream of one cell (ratio, schedule, seed) from the shard manifests.

Seeding is split by purpose so that comparisons are paired: the D1 subsample depends only on
the seed (and is nested: a smaller ratio takes a prefix of a larger ratio's blocks), and the
order depends on the seed and the schedule. A stream stores indices, never tokens.
"""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from curriculab.io import read_arrow, write_arrow, write_json
from curriculab.streams.schedules import SCHEDULES, Order

_SUBSAMPLE, _ORDER = 0, 1  # independent random streams per purpose


class StreamError(ValueError):
    """A cell's stream cannot be built (e.g. the ratio asks for more D1 than exists)."""


def _schedule_key(name: str) -> int:
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)


def available_blocks(
    train_blocks: dict[str, int], target: str, ratio: float, seed: int
) -> dict[str, np.ndarray]:
    """Block indices each domain contributes: all of D2 (and others), a seeded subset of D1.

    D1 gets round(ratio * blocks of the other domains) blocks, drawn as a prefix of one seeded
    permutation, so the D1 data at a small ratio is contained in the D1 data at a larger one.
    """
    others = sum(n for name, n in train_blocks.items() if name != target)
    wanted = round(ratio * others)
    if wanted < 1:
        raise StreamError(f"ratio {ratio:g} gives no {target!r} block ({others} other blocks)")
    if wanted > train_blocks[target]:
        raise StreamError(
            f"ratio {ratio:g} needs {wanted} train blocks of {target!r}, "
            f"but its shard holds only {train_blocks[target]}"
        )
    subset = np.random.default_rng([seed, _SUBSAMPLE]).permutation(train_blocks[target])[:wanted]
    return {
        name: (np.sort(subset) if name == target else np.arange(n, dtype=np.int64))
        for name, n in train_blocks.items()
    }


def build_order(
    train_blocks: dict[str, int], target: str, ratio: float, schedule: str, seed: int
) -> tuple[list[str], Order]:
    """The (domain names, order) of one cell."""
    names = sorted(train_blocks)
    available = available_blocks(train_blocks, target, ratio, seed)
    rng = np.random.default_rng([seed, _ORDER, _schedule_key(schedule)])
    by_index = {names.index(name): blocks for name, blocks in available.items()}
    return names, SCHEDULES[schedule](by_index, names.index(target), rng)


def stream_table(names: list[str], order: Order) -> pa.Table:
    """The stream as Arrow: domain (dictionary-encoded name), block, epoch."""
    domain = pa.DictionaryArray.from_arrays(
        pa.array(order.domains, pa.int32()), pa.array(names, pa.string())
    )
    return pa.table(
        {
            "domain": domain,
            "block": pa.array(order.blocks, pa.int64()),
            "epoch": pa.array(np.zeros(len(order.blocks), dtype=np.int32)),
        }
    )


def summarise_order(names: list[str], order: Order, target: str, bins: int = 10) -> dict[str, Any]:
    """Counts per domain and the target's share in each tenth of training."""
    target_mask = order.domains == names.index(target)
    edges = np.linspace(0, len(order.blocks), bins + 1).round().astype(int)
    return {
        "n_sequences": len(order.blocks),
        "blocks_per_domain": {n: int((order.domains == i).sum()) for i, n in enumerate(names)},
        "target_share_by_tenth": [
            float(target_mask[a:b].mean()) if b > a else 0.0 for a, b in itertools.pairwise(edges)
        ],
    }


def write_stream(
    manifests: dict[str, dict[str, Any]],
    target: str,
    ratio: float,
    schedule: str,
    seed: int,
    out_path: str | Path,
    summary_path: str | Path,
) -> dict[str, Any]:
    """Build one cell's stream from shard manifests; write Arrow IPC and a JSON summary."""
    train_blocks = {name: m["splits"]["train"]["n_blocks"] for name, m in manifests.items()}
    names, order = build_order(train_blocks, target, ratio, schedule, seed)
    write_arrow(stream_table(names, order), out_path)
    summary = summarise_order(names, order, target)
    summary.update(ratio=ratio, schedule=schedule, seed=seed, seq_len=manifests[target]["seq_len"])
    write_json(summary_path, summary)
    return summary


def read_stream(path: str | Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Read a stream: (domain names, per-position domain index, per-position block index)."""
    table = read_arrow(path).combine_chunks()
    domain = table["domain"].chunk(0)
    names = domain.dictionary.to_pylist()
    return names, domain.indices.to_numpy().astype(np.int64), table["block"].to_numpy()
