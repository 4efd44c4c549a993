"""Schedule families: where each domain's blocks go over training time.

A family turns its parameters into a *plan* for the K domains of a cell:

- a `Profile`: piecewise-constant target shares s_k(t) over training time t in [0, 1]
  (every column sums to 1), or
- a `Placement`: the target's blocks at times drawn from Beta(a, b), every other block at a
  uniform time.

`curriculab.streams.build` turns a plan into an order: block counts per domain (fixed by the
data under `fixed_data`, by the plan's shares under `fixed_tokens`), event times per block,
and one sort. Register a family with `@family("name", check=...)`; `check` validates its
parameters when Snakemake builds the DAG.

The target domain (D1) is the domain the study minimises test loss on. Families that speak of
"the D1 share" give the rest of each moment to the other domains in proportion to their sizes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from curriculab.errors import ConfigError, CurriculabError

Budget = Literal["fixed_data", "fixed_tokens"]
# A schedule's key naming the selection its cells train on (curriculab.selection): the
# schedule's own parameters are everything else.
SELECT = "select"


@dataclass(frozen=True)
class BudgetSpec:
    """How long training is: one pass over the data, or a token budget with repeats."""

    kind: Budget = "fixed_data"
    total_blocks: int | None = None  # sequences in the run (fixed_tokens)
    max_epochs: float | None = None  # cap on passes over any one domain (fixed_tokens)
    step_blocks: int = 1  # sequences per optimiser step: a branch starts on a step boundary


RAMP_BINS = 100  # piecewise-constant resolution of ramp shapes (1% of training per bin)


def budget_spec(streams: dict[str, Any], seq_len: int, batch_size: int = 1) -> BudgetSpec:
    """The typed budget of a validated `streams:` mapping (tokens become whole blocks);
    batch_size: sequences per optimiser step, where branches may start (streams.prefix)."""
    if streams["budget"] == "fixed_data":
        return BudgetSpec("fixed_data", step_blocks=batch_size)
    blocks = streams["tokens"] // seq_len
    if blocks < 1:
        raise ConfigError(
            f"config key 'streams.tokens': {streams['tokens']} is less than one block "
            f"(shards.seq_len = {seq_len} tokens)"
        )
    return BudgetSpec("fixed_tokens", blocks, streams.get("max_epochs"), batch_size)


class ScheduleError(CurriculabError, ValueError):
    """A schedule cannot be built from its parameters; the message names schedule and parameter."""


@dataclass(frozen=True)
class Profile:
    """Target shares: domain k has share shares[k, b] during [edges[b], edges[b + 1])."""

    edges: np.ndarray  # (B + 1,) training-time fractions from 0 to 1
    shares: np.ndarray  # (K, B), each column sums to 1
    window: float | None = None  # where a family's own final window starts (None: D1's rule)

    def mass(self) -> np.ndarray:
        """(K,) each domain's share of the whole run: the integral of s_k over time."""
        return self.shares @ np.diff(self.edges)


@dataclass(frozen=True)
class Placement:
    """Target blocks at Beta(a, b)-distributed times; others uniform. `target_share` under
    `fixed_tokens` (None: the target's natural share of the available blocks)."""

    a: float
    b: float
    target_share: float | None


Plan = Profile | Placement


@dataclass(frozen=True)
class Context:
    """What a family knows about the cell it plans for."""

    schedule: str  # the schedule's name in the study (for error messages)
    names: tuple[str, ...]  # domain names; indices below refer to this order
    target: int  # index of D1
    available: np.ndarray  # (K,) blocks available per domain after the D1 subsample
    budget: Budget
    utility: np.ndarray | None = None  # (K,) utility weights summing to 1 (curriculab.objective)

    @property
    def natural(self) -> np.ndarray:
        """(K,) each domain's share of the available blocks."""
        return self.available / self.available.sum()

    def fail(self, parameter: str, problem: str) -> ScheduleError:
        """A one-line error naming this schedule and the parameter at fault."""
        return ScheduleError(f"schedule {self.schedule!r}, parameter {parameter!r}: {problem}")


FamilyFn = Callable[[Context, dict[str, Any]], Plan]
CheckFn = Callable[[dict[str, Any], Sequence[str], str], str | None]


@dataclass(frozen=True)
class Family:
    """A registered family: its planner and its config-time parameter check."""

    plan: FamilyFn
    check: CheckFn


FAMILIES: dict[str, Family] = {}


def _no_check(params: dict[str, Any], names: Sequence[str], target: str) -> str | None:
    return None


def family(name: str, check: CheckFn = _no_check) -> Callable[[FamilyFn], FamilyFn]:
    """Register a family under `name` (the `family:` value in config)."""

    def register(fn: FamilyFn) -> FamilyFn:
        FAMILIES[name] = Family(plan=fn, check=check)
        return fn

    return register


def name_key(name: str) -> int:
    """A 32-bit integer of a name, to seed a random stream of its own."""
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)


def apportion(weights: np.ndarray, total: int) -> np.ndarray:
    """Integers proportional to `weights` summing to `total` (largest remainder)."""
    exact = weights / weights.sum() * total
    counts = np.floor(exact).astype(np.int64)
    short = total - counts.sum()
    counts[np.argsort(-(exact - counts), kind="stable")[:short]] += 1
    return counts


def target_profile(ctx: Context, edges: Sequence[float], target_share: np.ndarray) -> Profile:
    """A profile in which D1 has `target_share[b]` of bin b; the others split the rest by size."""
    others = ctx.natural.copy()
    others[ctx.target] = 0.0
    others /= others.sum()
    shares = np.outer(others, 1.0 - np.asarray(target_share, dtype=np.float64))
    shares[ctx.target] = target_share
    return Profile(np.asarray(edges, dtype=np.float64), shares)


# --- the families ---------------------------------------------------------------------------


@family("shuffled")
def shuffled(ctx: Context, params: dict[str, Any]) -> Plan:
    """Every domain at its natural share all the time: a uniform random interleave (baseline)."""
    return Profile(np.array([0.0, 1.0]), ctx.natural[:, None].copy())


def _check_sequential(params: dict[str, Any], names: Sequence[str], target: str) -> str | None:
    if sorted(params["order"]) != sorted(names):
        return f"parameter 'order' must list every domain once: {sorted(names)}"
    return None


@family("sequential", check=_check_sequential)
def sequential(ctx: Context, params: dict[str, Any]) -> Plan:
    """Domains one after another in `order`, each for a stretch proportional to its size."""
    order = [ctx.names.index(name) for name in params["order"]]
    edges = np.concatenate([[0.0], np.cumsum(ctx.natural[order])])
    edges[-1] = 1.0
    shares = np.zeros((len(ctx.names), len(order)))
    shares[order, np.arange(len(order))] = 1.0
    return Profile(edges, shares)


def _check_end_window(params: dict[str, Any], names: Sequence[str], target: str) -> str | None:
    if ("d1_share" in params) == ("d1_factor" in params):
        return "give exactly one of 'd1_share' (absolute) or 'd1_factor' (times D1's natural share)"
    if params.get("remove", names[0]) not in names:
        return f"parameter 'remove': {params['remove']!r} is not one of the domains {list(names)}"
    if params.get("hold_total") and "trunk" in params:
        return (
            "parameter 'hold_total': a window on a trunk follows the trunk's base mixture, so it "
            "adds D1 (upsampling); drop 'trunk' to hold D1's total, or 'hold_total' to upsample"
        )
    return None


@family("end_window", check=_check_end_window)
def end_window(ctx: Context, params: dict[str, Any]) -> Plan:
    """A base mixture, then D1 at share `d1_share` in the final `window` of training.

    `d1_factor` instead scales D1's natural share (the "upsample by k" form). Under fixed_data
    the base share is whatever D1 is left. Under fixed_tokens `hold_total` (the default) keeps
    D1's total at its natural share, as under fixed_data: the window moves D1, it adds none, so
    against the baseline only the order differs (analysis.controls); `hold_total: false` asks
    for upsampling instead, the end-window paper's protocol: the base at `base_d1_share`
    (default: D1's natural share) and D1's total raised by the window, which the audit reports
    as upsampling, never as H1. `remove` leaves one domain out of the window and gives its share to
    the others in proportion: the window of the same schedule without it, less that domain
    (its utility by removal, arXiv 2406.03476).
    """
    window = params["window"]
    natural = ctx.natural[ctx.target]
    share = params.get("d1_share", natural * params.get("d1_factor", 1.0))
    if share > 1.0:
        raise ctx.fail("d1_factor", f"gives a D1 share of {share:.3f} > 1 in the window")
    # On a trunk the base is the trunk's mixture, so a window there always adds D1.
    if ctx.budget == "fixed_data" or params.get("hold_total", "trunk" not in params):
        base = (natural - window * share) / (1.0 - window)
        if ctx.budget == "fixed_tokens" and window * share > natural + 1e-9:
            raise ctx.fail(
                "hold_total",
                f"D1's natural share {natural:.4f} cannot fill a share of {share:.4f} in the "
                f"final {window:g} of training; lower the share or shorten the window",
            )
        if base < -0.5 / ctx.available.sum():
            need, have = window * share * ctx.available.sum(), ctx.available[ctx.target]
            raise ctx.fail(
                "d1_share",
                f"needs {need:.0f} D1 blocks in the final {window:g} of training but fixed_data "
                f"has only {have}; lower it, shorten the window, or use budget fixed_tokens",
            )
        base = max(base, 0.0)
    else:
        base = params.get("base_d1_share", natural)
    profile = target_profile(ctx, [0.0, 1.0 - window, 1.0], np.array([base, share]))
    if "remove" in params:
        column = profile.shares[:, 1]
        column[ctx.names.index(params["remove"])] = 0.0
        if column.sum() <= 0.0:
            raise ctx.fail("remove", f"{params['remove']!r} is all of the window; nothing is left")
        column /= column.sum()
    return profile


def ramp_shape(shape: str, bins: int = RAMP_BINS) -> np.ndarray:
    """(bins,) shape g(t) at bin midpoints, rising from 0 to 1; its mean is exactly 1/2."""
    t = (np.arange(bins) + 0.5) / bins
    return t if shape == "linear" else 0.5 * (1.0 - np.cos(np.pi * t))


@family("ramp")
def ramp(ctx: Context, params: dict[str, Any]) -> Plan:
    """D1 share moving from `start` to `end` over training, `shape` linear or cosine.

    Under fixed_data the D1 total is fixed, so the mean share must equal D1's natural share:
    leave `end` null to have it solved as 2 * natural - start.
    """
    start, end = params["start"], params.get("end")
    natural = ctx.natural[ctx.target]
    if end is None:
        if ctx.budget == "fixed_tokens":
            raise ctx.fail("end", "is required under budget fixed_tokens")
        end = 2.0 * natural - start
    elif ctx.budget == "fixed_data" and abs((start + end) / 2 - natural) * ctx.available.sum() > 1:
        raise ctx.fail(
            "end",
            f"under fixed_data the mean D1 share must be {natural:.4f}; "
            f"use end: {2 * natural - start:.4f} or null",
        )
    if not 0.0 <= end <= 1.0:
        raise ctx.fail("end", f"solves to {end:.4f}, outside [0, 1]; change 'start'")
    g = ramp_shape(params.get("shape", "linear"))
    edges = np.linspace(0.0, 1.0, len(g) + 1)
    return target_profile(ctx, edges, start + (end - start) * g)


def _check_stages(params: dict[str, Any], names: Sequence[str], target: str) -> str | None:
    total = sum(phase["fraction"] for phase in params["phases"])
    if abs(total - 1.0) > 1e-6:
        return f"parameter 'phases': fractions sum to {total:g}, expected 1"
    for i, phase in enumerate(params["phases"]):
        unknown = sorted(set(phase["shares"]) - set(names))
        if unknown:
            return f"parameter 'phases[{i}].shares': unknown domains {unknown}"
        share_sum = sum(phase["shares"].values())
        if abs(share_sum - 1.0) > 1e-6:
            return f"parameter 'phases[{i}].shares': shares sum to {share_sum:g}, expected 1"
    return None


@family("stages", check=_check_stages)
def stages(ctx: Context, params: dict[str, Any]) -> Plan:
    """Explicit phases, each a fraction of training with its own domain shares."""
    phases = params["phases"]
    edges = np.concatenate([[0.0], np.cumsum([p["fraction"] for p in phases])])
    edges[-1] = 1.0
    shares = np.array([[p["shares"].get(name, 0.0) for p in phases] for name in ctx.names])
    return Profile(edges, shares / shares.sum(axis=0, keepdims=True))


@family("placement")
def placement(ctx: Context, params: dict[str, Any]) -> Plan:
    """Each D1 block at a time drawn from Beta(a, b); a = b = 1 is uniform, a >> b is late.

    The other families are its limits: a -> inf is D1 last, b -> inf D1 first.
    """
    share = params.get("d1_share")
    if share is not None and ctx.budget == "fixed_data":
        raise ctx.fail("d1_share", "applies under budget fixed_tokens only (fixed_data: all D1)")
    return Placement(params["a"], params["b"], share)


def check_schedule(spec: dict[str, Any], names: Sequence[str], target: str) -> str | None:
    """A problem with a schedule's parameters (config time, no data needed), or None."""
    if spec["family"] not in FAMILIES:
        return f"unknown family {spec['family']!r}; expected one of {sorted(FAMILIES)}"
    params = {k: v for k, v in order_spec(spec).items() if k != "family"}
    return FAMILIES[spec["family"]].check(params, names, target)


def order_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """A schedule's spec without `select`, which picks the pool's data (curriculab.selection),
    not the order: what the schema of a family and the family itself see."""
    return {k: v for k, v in spec.items() if k != SELECT}


def final_window_start(plan: Plan, target: int, max_phases: int = 10) -> float | None:
    """Where the schedule's final D1 window begins (fraction of training), or None.

    A window is the last phase of a profile with few phases (end_window, sequential with D1
    last, stages) when D1's share there is above its share just before. Smooth profiles (ramp)
    and Beta placements have no window. A family may state its own (`Profile.window`: the K-domain
    families of streams.multi). A learning-rate arm can start its decay here, so that the
    cooldown and the data window coincide.
    """
    if not isinstance(plan, Profile):
        return None
    if plan.window is not None:  # the K-domain families state their window (streams.multi)
        return plan.window
    share = plan.shares[target]
    starts = [0, *(b for b in range(1, len(share)) if share[b] != share[b - 1])]
    if len(starts) < 2 or len(starts) > max_phases or share[-1] <= share[starts[-1] - 1]:
        return None
    return float(plan.edges[starts[-1]])


def make_plan(ctx: Context, spec: dict[str, Any]) -> Plan:
    """The plan of schedule `spec` ({'family': ..., **params}) for one cell."""
    params = {k: v for k, v in order_spec(spec).items() if k != "family"}
    return FAMILIES[spec["family"]].plan(ctx, params)
