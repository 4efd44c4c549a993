"""Named schedules: how the available blocks of every domain are ordered for training.

A schedule receives the available block indices per domain and returns the training order as
(domain, block) arrays. Every schedule here is a permutation of its input (fixed data, one
pass). Register a new one with `@schedule("name")`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Order:
    """A training order: position i trains on block `blocks[i]` of domain `domains[i]`."""

    domains: np.ndarray  # (n,) int: index into the sorted domain names
    blocks: np.ndarray  # (n,) int: row of that domain's train shard


ScheduleFn = Callable[[dict[int, np.ndarray], int, np.random.Generator], Order]
SCHEDULES: dict[str, ScheduleFn] = {}


def schedule(name: str) -> Callable[[ScheduleFn], ScheduleFn]:
    """Register a schedule function under `name` (the name used in config and paths)."""

    def register(fn: ScheduleFn) -> ScheduleFn:
        SCHEDULES[name] = fn
        return fn

    return register


def _shuffled_order(available: dict[int, np.ndarray], rng: np.random.Generator) -> Order:
    domains = np.concatenate([np.full(len(b), d, dtype=np.int64) for d, b in available.items()])
    blocks = np.concatenate([np.asarray(b, dtype=np.int64) for b in available.values()])
    perm = rng.permutation(len(blocks))
    return Order(domains[perm], blocks[perm])


def _concat(first: Order, second: Order) -> Order:
    return Order(
        np.concatenate([first.domains, second.domains]),
        np.concatenate([first.blocks, second.blocks]),
    )


def _split_target(
    available: dict[int, np.ndarray], target: int
) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    others = {d: b for d, b in available.items() if d != target}
    return {target: available[target]}, others


@schedule("shuffled")
def shuffled(available: dict[int, np.ndarray], target: int, rng: np.random.Generator) -> Order:
    """Uniform random interleave of every domain: the baseline mixture."""
    return _shuffled_order(available, rng)


@schedule("d1_last")
def d1_last(available: dict[int, np.ndarray], target: int, rng: np.random.Generator) -> Order:
    """The other domains shuffled together, then all target (D1) blocks at the end."""
    d1, others = _split_target(available, target)
    return _concat(_shuffled_order(others, rng), _shuffled_order(d1, rng))


@schedule("d1_first")
def d1_first(available: dict[int, np.ndarray], target: int, rng: np.random.Generator) -> Order:
    """All target (D1) blocks first, then the other domains shuffled together."""
    d1, others = _split_target(available, target)
    return _concat(_shuffled_order(d1, rng), _shuffled_order(others, rng))
