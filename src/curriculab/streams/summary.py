"""What a stream does, in numbers: shares over training, unique and repeated data, epochs."""

from __future__ import annotations

from typing import Any

import numpy as np

from curriculab.streams.build import Order

BARCODE_BINS = 50  # resolution of the report's barcode strips (2% of training each)


def shares_over_training(domains: np.ndarray, k: int, bins: int) -> list[float]:
    """Share of positions that belong to domain k in each of `bins` equal stretches."""
    bins = max(1, min(bins, len(domains)))
    starts = np.linspace(0, len(domains), bins + 1).round().astype(np.int64)
    hits = np.add.reduceat((domains == k).astype(np.int64), starts[:-1])
    return (hits / np.diff(starts)).tolist()


def summarise_order(names: list[str], order: Order, target: str, seq_len: int) -> dict[str, Any]:
    """Per domain: share per tenth, used/unique/repeated blocks and tokens, max epoch; plus the
    target's share in BARCODE_BINS stretches (the report's barcode)."""
    per_domain = {}
    for k, name in enumerate(names):
        mask = order.domains == k
        used = int(mask.sum())
        unique = int(np.unique(order.blocks[mask]).size)
        per_domain[name] = {
            "share_by_tenth": shares_over_training(order.domains, k, 10),
            "blocks_used": used,
            "unique_blocks": unique,
            "repeated_blocks": used - unique,
            "unique_tokens": unique * seq_len,
            "repeated_tokens": (used - unique) * seq_len,
            "max_epoch": int(order.epochs[mask].max()) if used else -1,
        }
    return {
        "n_sequences": len(order.domains),
        "seq_len": seq_len,
        "target": target,
        "window_start": order.window_start,
        "trunk": order.trunk,
        "branch_position": order.branch_position,
        "domains": per_domain,
        "target_share_by_bin": shares_over_training(
            order.domains, names.index(target), BARCODE_BINS
        ),
        "share_by_bin": {  # every domain's strip (the report draws one per domain when K > 2)
            name: shares_over_training(order.domains, k, BARCODE_BINS)
            for k, name in enumerate(names)
        },
    }
