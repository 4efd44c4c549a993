"""Build the stream of one cell (ratio, schedule, seed): which block trains at each position.

1. Available blocks: all of every other domain, and a seeded subset of D1 sized by the ratio.
2. Counts: how many sequences each domain gets (fixed_data: each available block once;
   fixed_tokens: the schedule's shares of a token budget, repeating blocks as needed).
3. Times: each sequence gets a time in [0, 1) from the schedule's plan; one stable sort of all
   times gives the order. Vectorised: no Python loop per position.
4. Blocks: each domain's uses take its blocks in a fresh permutation per epoch, so an epoch
   is finished before the next begins; the epoch is recorded per position.

Seeding is split by purpose so that comparisons are paired: the D1 subsample depends only on
the seed (and is nested: a smaller ratio takes a prefix of a larger ratio's blocks), and the
order on the seed and the schedule. A stream stores indices, never tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from curriculab.errors import CurriculabError
from curriculab.objective import utility_weights
from curriculab.streams.prefix import assign_sequences, branch_domains
from curriculab.streams.schedules import (
    BudgetSpec,
    Context,
    Placement,
    Plan,
    Profile,
    ScheduleError,
    apportion,
    final_window_start,
    make_plan,
    name_key,
)

_SUBSAMPLE, _ORDER = 0, 1  # independent random streams per purpose


class StreamError(CurriculabError, ValueError):
    """A cell's stream cannot be built (e.g. the ratio asks for more D1 than exists)."""


@dataclass(frozen=True)
class Order:
    """A training order: position i trains on block `blocks[i]` of domain `domains[i]`."""

    domains: np.ndarray  # (n,) int32: index into the domain names
    blocks: np.ndarray  # (n,) int64: row of that domain's train shard
    epochs: np.ndarray  # (n,) int32: 0 for a block's first use, 1 for its second, ...
    window_start: float | None = None  # where the final (D1 or family) window begins; None: none
    trunk: str | None = None  # the trunk whose order this one continues (streams.prefix)
    branch_position: int | None = None  # where it leaves the trunk's order (None: it does not)


def target_blocks_wanted(train_blocks: dict[str, int], target: str, ratio: float) -> int:
    """D1 train blocks a ratio asks for: round(ratio * train blocks of the other domains)."""
    return round(ratio * sum(n for name, n in train_blocks.items() if name != target))


def available_blocks(
    train_blocks: dict[str, int], target: str, ratio: float, seed: int
) -> dict[str, np.ndarray]:
    """Block indices each domain contributes: all of D2 (and others), a seeded subset of D1.

    D1 gets round(ratio * blocks of the other domains) blocks, drawn as a prefix of one seeded
    permutation, so the D1 data at a small ratio is contained in the D1 data at a larger one.
    """
    others = sum(n for name, n in train_blocks.items() if name != target)
    wanted = target_blocks_wanted(train_blocks, target, ratio)
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


def plan_mass(ctx: Context, plan: Plan) -> np.ndarray:
    """(K,) each domain's share of the run under a plan."""
    if isinstance(plan, Profile):
        return plan.mass()
    share = ctx.natural[ctx.target] if plan.target_share is None else plan.target_share
    others = ctx.natural * (1.0 - share) / (1.0 - ctx.natural[ctx.target])
    others[ctx.target] = share
    return others


def block_counts(ctx: Context, plan: Plan, budget: BudgetSpec) -> np.ndarray:
    """(K,) sequences per domain; errors name the schedule and the domain that cannot comply."""
    mass = plan_mass(ctx, plan)
    if budget.kind == "fixed_data":
        implied = mass * ctx.available.sum()
        for k in np.flatnonzero(np.abs(implied - ctx.available) > 1.0):
            raise ScheduleError(
                f"schedule {ctx.schedule!r}: domain {ctx.names[k]!r} would get {implied[k]:.0f} "
                f"blocks but fixed_data uses each of its {ctx.available[k]} blocks once; "
                "change its shares or use budget fixed_tokens"
            )
        return ctx.available.copy()
    counts = apportion(mass, budget.total_blocks)
    if budget.max_epochs is not None:
        for k in np.flatnonzero(counts > budget.max_epochs * ctx.available):
            raise ScheduleError(
                f"schedule {ctx.schedule!r}: domain {ctx.names[k]!r} needs "
                f"{counts[k] / ctx.available[k]:.2f} epochs of its {ctx.available[k]} blocks, "
                f"more than max_epochs {budget.max_epochs:g}"
            )
    return counts


def profile_times(profile: Profile, counts: np.ndarray, rng: np.random.Generator) -> list:
    """Per domain, event times that follow the profile: exact counts per bin (cumulative
    rounding, so every stretch of bins is within one block), uniform inside a bin."""
    widths = np.diff(profile.edges)
    times = []
    for k, count in enumerate(counts):
        mass = profile.shares[k] * widths
        cdf = np.concatenate([[0.0], np.cumsum(mass)]) / max(mass.sum(), 1e-300)
        per_bin = np.diff(np.round(count * cdf).astype(np.int64))
        bins = np.repeat(np.arange(len(widths)), per_bin)
        times.append(profile.edges[bins] + widths[bins] * rng.random(len(bins)))
    return times


def placement_times(ctx: Context, plan: Placement, counts, rng: np.random.Generator) -> list:
    """D1 times from Beta(a, b); every other domain's times uniform."""
    return [
        rng.beta(plan.a, plan.b, size=c) if k == ctx.target else rng.random(c)
        for k, c in enumerate(counts)
    ]


def assign_blocks(
    domains: np.ndarray, available: list[np.ndarray], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Blocks and epochs for a domain sequence: a fresh permutation of each domain per epoch."""
    blocks = np.empty(len(domains), dtype=np.int64)
    epochs = np.empty(len(domains), dtype=np.int32)
    for k, pool in enumerate(available):
        where = np.flatnonzero(domains == k)
        n_epochs = -(-len(where) // len(pool)) if len(pool) else 0
        perms = [rng.permutation(pool) for _ in range(n_epochs)]
        blocks[where] = np.concatenate(perms)[: len(where)] if perms else []
        epochs[where] = np.arange(len(where)) // max(len(pool), 1)
    return blocks, epochs


def cell_context(
    names: list[str],
    target: str,
    schedule: str,
    spec: dict[str, Any],
    sizes: np.ndarray,
    budget: BudgetSpec,
) -> Context:
    """What a schedule's family knows about a cell with `sizes` (K,) available blocks."""
    weights = utility_weights(spec.get("utility"), names, target, sizes)
    return Context(schedule, tuple(names), names.index(target), sizes, budget.kind, weights)


def plan_problem(
    train_blocks: dict[str, int],
    target: str,
    ratio: float,
    schedule: str,
    spec: dict[str, Any],
    budget: BudgetSpec = BudgetSpec(),
) -> str | None:
    """Why a schedule cannot be built for a cell at `ratio` (one line), or None when it can:
    the check of a proposed point before any stream is written (curriculab.design)."""
    names = sorted(train_blocks)
    wanted = target_blocks_wanted(train_blocks, target, ratio)
    sizes = np.array([wanted if name == target else train_blocks[name] for name in names])
    ctx = cell_context(names, target, schedule, spec, sizes, budget)
    try:
        block_counts(ctx, make_plan(ctx, spec), budget)
    except ValueError as error:  # ScheduleError: a family or the budget refuses the point
        return str(error)
    return None


def build_order(
    train_blocks: dict[str, int],
    target: str,
    ratio: float,
    schedule: str,
    spec: dict[str, Any],
    seed: int,
    budget: BudgetSpec = BudgetSpec(),
) -> tuple[list[str], Order]:
    """The (domain names, order) of one cell; a schedule on a trunk continues its order."""
    names = sorted(train_blocks)
    available = available_blocks(train_blocks, target, ratio, seed)
    pools = [available[name] for name in names]
    ctx = cell_context(names, target, schedule, spec, np.array([len(p) for p in pools]), budget)
    if "trunk" in spec:
        domains, position = branch_domains(ctx, spec, budget.total_blocks, budget.step_blocks, seed)
        blocks, epochs = assign_sequences(
            domains, pools, seed, spec["trunk"], budget.max_epochs, ctx
        )
        window = None if position is None else position / len(domains)
        return names, Order(domains, blocks, epochs, window, spec["trunk"], position)
    plan = make_plan(ctx, spec)
    counts = block_counts(ctx, plan, budget)
    rng = np.random.default_rng([seed, _ORDER, name_key(schedule)])
    if isinstance(plan, Profile):
        times = profile_times(plan, counts, rng)
    else:
        times = placement_times(ctx, plan, counts, rng)
    labels = np.repeat(np.arange(len(names), dtype=np.int32), counts)
    domains = labels[np.argsort(np.concatenate(times), kind="stable")]
    blocks, epochs = assign_blocks(domains, pools, rng)
    window = final_window_start(plan, ctx.target)
    return names, Order(domains, blocks, epochs, window)


def build_trunk_order(
    train_blocks: dict[str, int],
    target: str,
    ratio: float,
    trunk: str,
    base_d1_share: float | None,
    seed: int,
    budget: BudgetSpec,
) -> tuple[list[str], Order]:
    """The (domain names, order) of a trunk: its base mixture (D1 at `base_d1_share`, None: its
    natural share) over the whole budget, the prefix of every stream that branches off it; it
    is the order of a shuffled schedule on the trunk."""
    spec = {"family": "shuffled", "trunk": trunk, "base_d1_share": base_d1_share}
    return build_order(train_blocks, target, ratio, f"trunk {trunk}", spec, seed, budget)
