"""Prefix-stable orders: a trunk's stream, and the streams of the schedules that branch off it.

A trunk is the base mixture trained once per (ratio, seed): "Does your data spark joy?" (arXiv
2406.03476) trains each end-of-training window, and each window with one dataset removed, from
one shared checkpoint. For that a branch's stream must be, position by position, the trunk's up
to its branch point, then its own window. It holds by construction:

1. The trunk's order is a seeded permutation of the base mixture's labels over the whole token
   budget. It depends on the ratio, the seed, the trunk's name and the base mixture, never on
   a window, so every branch (and every future branch) sees the same prefix.
2. A branch of an `end_window` schedule takes the trunk's first P positions, where P is its
   window start rounded to a whole optimiser step (a branch resumes between two steps), and
   then its window mixture in an order seeded by its own name. A `shuffled` schedule on a trunk
   is the trunk's order to the end.
3. Blocks: domain k's uses take its blocks from one seeded sequence of permutations (an epoch
   is finished before the next begins), so the trunk's first uses are every branch's first uses.

Only `fixed_tokens` budgets can branch: under `fixed_data` a longer window moves D1 out of the
base, so two windows cannot share a prefix (config.py rejects it, naming the schedule).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from curriculab.errors import ConfigError
from curriculab.streams.schedules import (
    BudgetSpec,
    Context,
    Profile,
    ScheduleError,
    apportion,
    make_plan,
    name_key,
    target_profile,
)

_TRUNK, _BLOCKS, _WINDOW = 2, 3, 4  # random streams of their own (build.py uses 0 and 1)


def window_step(window: float, total_blocks: int, batch_size: int) -> int:
    """The optimiser step at which a window of `window` (fraction of training) starts: its
    start rounded to a whole step, so the branch resumes between two steps."""
    return round((1.0 - window) * total_blocks / batch_size)


def check_trunk_members(
    trunk: str, members: dict[str, dict[str, Any]], total_blocks: int, batch_size: int
) -> str | None:
    """A problem with the schedules of one trunk (config time), or None.

    All members share one base mixture; every window starts after step 0 and before the last
    step. (Only end_window and shuffled schedules can name a trunk: the schema says so.)
    """
    steps = total_blocks // batch_size
    bases = {}
    for name, spec in members.items():  # (the schema allows `trunk` on these families only)
        bases[name] = spec.get("base_d1_share")
        if spec["family"] == "end_window":
            step = window_step(spec["window"], total_blocks, batch_size)
            if not 0 < step < steps:
                return (
                    f"schedule {name!r}: window {spec['window']:g} starts at step {step} of "
                    f"{steps}; a branch needs at least one step of trunk and one of window"
                )
    if len(set(bases.values())) > 1:
        return (
            f"schedules of trunk {trunk!r} differ in base_d1_share ({bases}); a trunk is one base "
            "mixture: give them the same value (or none, for D1's natural share)"
        )
    return None


def block_sequence(
    pool: np.ndarray, uses: int, seed: int, trunk: str, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The first `uses` blocks of domain k and their epochs: one seeded permutation of its pool
    per epoch. The same (seed, trunk, k) gives the same sequence whatever `uses` is."""
    if uses == 0:
        return np.empty(0, np.int64), np.empty(0, np.int32)
    rng = np.random.default_rng([seed, _BLOCKS, name_key(trunk), k])
    perms = [rng.permutation(pool) for _ in range(-(-uses // len(pool)))]
    return np.concatenate(perms)[:uses], (np.arange(uses) // len(pool)).astype(np.int32)


def base_shares(ctx: Context, base_d1_share: float | None) -> np.ndarray:
    """(K,) the trunk's mixture: D1 at `base_d1_share` (None: its natural share), the other
    domains in proportion to their sizes (end_window's base under fixed_tokens)."""
    share = ctx.natural[ctx.target] if base_d1_share is None else base_d1_share
    return target_profile(ctx, [0.0, 1.0], np.array([share])).shares[:, 0]


def trunk_domains(shares: np.ndarray, total: int, seed: int, trunk: str) -> np.ndarray:
    """(total,) the trunk's domain per position: its mixture's counts, in a seeded order."""
    labels = np.repeat(np.arange(len(shares), dtype=np.int32), apportion(shares, total))
    return np.random.default_rng([seed, _TRUNK, name_key(trunk)]).permutation(labels)


def branch_domains(
    ctx: Context,
    spec: dict[str, Any],
    total: int,
    batch_size: int,
    seed: int,
) -> tuple[np.ndarray, int | None]:
    """(domain per position, branch position) of a schedule on its trunk; the branch position
    is None for a shuffled member (the trunk's order to the end)."""
    trunk = spec["trunk"]
    domains = trunk_domains(base_shares(ctx, spec.get("base_d1_share")), total, seed, trunk)
    if spec["family"] == "shuffled":
        return domains, None
    position = batch_size * window_step(spec["window"], total, batch_size)
    plan = make_plan(ctx, spec)
    assert isinstance(plan, Profile)
    window = np.repeat(
        np.arange(len(ctx.names), dtype=np.int32), apportion(plan.shares[:, 1], total - position)
    )
    rng = np.random.default_rng([seed, _WINDOW, name_key(ctx.schedule)])
    return np.concatenate([domains[:position], rng.permutation(window)]), position


def assign_sequences(
    domains: np.ndarray,
    pools: Sequence[np.ndarray],
    seed: int,
    trunk: str,
    max_epochs: float | None,
    ctx: Context,
) -> tuple[np.ndarray, np.ndarray]:
    """Blocks and epochs per position, each domain's uses in its own seeded sequence."""
    blocks = np.empty(len(domains), dtype=np.int64)
    epochs = np.empty(len(domains), dtype=np.int32)
    for k, pool in enumerate(pools):
        where = np.flatnonzero(domains == k)
        if max_epochs is not None and len(where) > max_epochs * len(pool):
            raise ScheduleError(
                f"schedule {ctx.schedule!r}: domain {ctx.names[k]!r} needs "
                f"{len(where) / len(pool):.2f} epochs of its {len(pool)} blocks, "
                f"more than max_epochs {max_epochs:g}"
            )
        blocks[where], epochs[where] = block_sequence(pool, len(where), seed, trunk, k)
    return blocks, epochs


# --- config time ------------------------------------------------------------------------------


def check_trunks(
    schedules: dict[str, dict[str, Any]], budget: BudgetSpec, seq_len: int
) -> dict[str, tuple[str, ...]]:
    """{trunk: its schedules}; a trunk that cannot give every member the same prefix is a
    ConfigError naming the schedule."""
    trunks: dict[str, list[str]] = {}
    for name, spec in schedules.items():
        if "trunk" in spec:
            trunks.setdefault(spec["trunk"], []).append(name)
    if not trunks:
        return {}
    first = next(iter(trunks.values()))[0]
    if budget.kind != "fixed_tokens":
        raise ConfigError(
            f"config key 'grid.schedules.{first}.trunk': branching needs streams.budget "
            "fixed_tokens (under fixed_data a longer window moves D1 out of the base, so no two "
            "windows share a prefix); use fixed_tokens with streams.tokens, or drop 'trunk' to "
            "train every cell from step 0"
        )
    step_tokens = budget.step_blocks * seq_len
    if budget.total_blocks % budget.step_blocks:
        whole = budget.total_blocks // budget.step_blocks * step_tokens
        raise ConfigError(
            f"config key 'streams.tokens': with trunks the budget must be whole optimiser steps "
            f"of {step_tokens} tokens (train.batch_size x shards.seq_len); use {whole}"
        )
    for trunk, members in trunks.items():
        specs = {name: schedules[name] for name in members}
        problem = check_trunk_members(trunk, specs, budget.total_blocks, budget.step_blocks)
        if problem:
            raise ConfigError(f"config key 'grid.schedules' (trunk {trunk!r}): {problem}")
    return {trunk: tuple(members) for trunk, members in trunks.items()}


def check_removals(schedules: dict[str, dict[str, Any]]) -> dict[str, dict[str, str]]:
    """{schedule with `remove`: {domain, reference}}: the reference is the schedule of the same
    window that keeps the domain; without one the utility cannot be measured (ConfigError)."""
    removals = {}
    for name, spec in schedules.items():
        if "remove" not in spec:
            continue
        keep = {k: v for k, v in spec.items() if k != "remove"}
        reference = next((n for n, s in schedules.items() if s == keep), None)
        if reference is None:
            raise ConfigError(
                f"config key 'grid.schedules.{name}.remove': no schedule of the study has the "
                f"same window with {spec['remove']!r} kept ({keep}); add it, so that the "
                "domain's utility is measured against it"
            )
        removals[name] = {"domain": spec["remove"], "reference": reference}
    return removals
