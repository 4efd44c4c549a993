"""The ladder's plan (docs/stages/ladder.md): its scales, the cells of every scale, the check.

Read at DAG time (torch- and scipy-free). A study's `ladder:` key lists three or more scales
(token budgets, optionally a model preset each) and a target scale. At every scale it trains:

- the mixture runs: a base mixture (natural or uniform) and, per domain, that domain's amount
  scaled by every level other than 1 with the others fixed (AutoScale's "Direct Data
  Optimization", five levels instead of three so that every fit has residuals);
- the ordering runs: the end window at five or more window lengths (the factor held) and five
  or more D1 factors (the window held), D1's total held at its natural share.

At the target scale it trains the check: static mixtures at the optimum predicted by either
rule, the natural mixture, uniform weights and the smallest scale's optimum used unchanged.
Every cell has a name before anything runs (`ladder_{scale}_{run}`, `ladder_target_{mixture}`),
so the DAG is fixed from the start; what a cell trains on (shares, tokens) is set when its
stream is built, from the shard manifests and, for the check, the ladder's predictions.

Repetition: AutoScale's runs see every token once. A cell's epochs of a domain are the blocks it
trains on over the blocks that domain's pool holds at the ladder's ratio (D1 subsampled). Every
scale's runs and the check's natural and uniform mixtures must stay within `max_epochs` (default
1): every ladder cell's stream checks them all (`check_epochs`), so the first one built fails,
the first moment the pool sizes are known and before any ladder cell trains. The check's
data-dependent mixtures (both predictions, the smallest scale's optimum) are trained as they
are, repetition included (capping one would check a different mixture); the ladder's tables
flag any that needs more than the cap.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from curriculab.errors import ConfigError
from curriculab.streams.build import target_blocks_wanted
from curriculab.streams.schedules import apportion

PREFIX = "ladder_"
BASE = "base"
TARGET = "target"
CHECK = ("predicted_all", "predicted_autoscale", "natural", "uniform", "smallest")
FIXED = ("natural", "uniform")  # the check's mixtures set by the data alone, held to max_epochs


@dataclass(frozen=True)
class Perturbation:
    """One mixture run of a scale: its name, the domain it perturbs (None: the base run) and
    level, and the tokens of every domain."""

    name: str
    domain: str | None
    level: float
    amounts: dict[str, float]

    @property
    def tokens(self) -> int:
        """The run's budget: its domains' tokens summed."""
        return round(sum(self.amounts.values()))

    def spec(self) -> dict[str, Any]:
        """The run's schedule: one phase at its shares (a static mixture)."""
        return mixture_spec(self.amounts)


def mixture_spec(weights: Mapping[str, float]) -> dict[str, Any]:
    """A static mixture: one `stages` phase at `weights` (normalised, 6 decimals, summing to 1)."""
    total = sum(weights.values())
    shares = {d: round(w / total, 6) for d, w in weights.items()}
    top = max(shares, key=shares.get)
    shares[top] = round(shares[top] + 1.0 - sum(shares.values()), 6)
    return {"family": "stages", "phases": [{"fraction": 1.0, "shares": shares}]}


def perturbations(
    base: Mapping[str, float], tokens: int, levels: Sequence[float]
) -> list[Perturbation]:
    """The base run and, per domain and level other than 1, its perturbation run. `base`:
    the base mixture's weights (normalised here)."""
    if 1.0 not in levels or len(levels) < 5 or min(levels) <= 0:
        raise ValueError(f"levels must be positive, include 1 and number at least 5: {levels}")
    total = sum(base.values())
    amounts = {d: w / total * tokens for d, w in base.items()}
    runs = [Perturbation(BASE, None, 1.0, amounts)]
    for domain in base:
        for level in levels:
            if level != 1.0:
                scaled = {**amounts, domain: amounts[domain] * level}
                runs.append(Perturbation(f"{domain}-x{level:g}", domain, float(level), scaled))
    return runs


@dataclass(frozen=True)
class Scale:
    name: str  # s1, s2, ... in increasing tokens; `target` for the check
    tokens: int  # the scale's budget (a base run's tokens)
    preset: str  # the model preset of its cells


@dataclass(frozen=True)
class Ladder:
    """The ladder of a study: its scales, the runs of each, the check and where cells run."""

    scales: tuple[Scale, ...]  # increasing tokens, at least three
    target: Scale  # the check's scale, above the last
    base: str  # natural | uniform: the mixture every scale perturbs
    levels: tuple[float, ...]  # a domain's amount, in units of its base amount
    windows: tuple[float, ...]  # end-window lengths (fractions of training)
    factors: tuple[float, ...]  # D1 upsampling factors in the window
    window: float  # the window held while the factor varies
    factor: float  # the factor held while the window varies
    seeds: tuple[int, ...]  # seeds of every scale's cells (the check runs the study's)
    ratio: str  # ratio label of every ladder cell (sets D1's pool)
    arm: str  # learning-rate arm of every ladder cell
    draws: int  # normal draws behind every interval
    seed: int  # seeds the draws
    seq_len: int  # tokens per block (shards.seq_len): a cell's tokens in blocks, for its epochs
    max_epochs: float | None  # passes over a domain's pool a fixed cell may take (None: any)

    def params(self) -> dict[str, Any]:
        """A plain mapping (a rule's params); `Ladder.of` reads it back."""
        return asdict(self)

    @classmethod
    def of(cls, params: Mapping[str, Any]) -> Ladder:
        return cls(
            **{
                **params,
                "scales": tuple(Scale(**s) for s in params["scales"]),
                "target": Scale(**params["target"]),
                **{k: tuple(params[k]) for k in ("levels", "windows", "factors", "seeds")},
            }
        )

    def scale(self, name: str) -> Scale:
        return next(s for s in (*self.scales, self.target) if s.name == name)

    def cell_size(self, schedule: str) -> tuple[int, str] | None:
        """(tokens at most, model preset) of a ladder cell's scale, or None for a schedule that
        is not the ladder's (its cells train the study's budget and preset)."""
        name = scale_of(schedule)
        if name is None:
            return None
        scale = self.scale(name)
        return round(scale.tokens * max(self.levels)), scale.preset

    def mixture_runs(self, domains: Sequence[str]) -> list[str]:
        """Names of a scale's mixture runs (base first)."""
        return [r.name for r in perturbations(dict.fromkeys(domains, 1.0), 1, self.levels)]

    def order_points(self) -> list[tuple[float, float]]:
        """(window, factor) of a scale's ordering runs: every window at the held factor, then
        every factor at the held window (their shared point once)."""
        points = [(w, self.factor) for w in self.windows]
        return points + [(self.window, f) for f in self.factors if f != self.factor]

    def names(self, scale: str, domains: Sequence[str]) -> list[str]:
        """Schedule names of a scale's cells (the check's at the target)."""
        if scale == TARGET:
            return [f"{PREFIX}{TARGET}_{m}" for m in CHECK]
        runs = self.mixture_runs(domains) + [order_name(w, f) for w, f in self.order_points()]
        return [f"{PREFIX}{scale}_{run}" for run in runs]

    def all_names(self, domains: Sequence[str]) -> list[str]:
        return [n for s in (*self.scales, self.target) for n in self.names(s.name, domains)]

    def cells(self, names: Sequence[str], seeds: Sequence[int]) -> list[dict[str, Any]]:
        """The cells (ratio, schedule, arm, seed) of `names` at the ladder's ratio and arm."""
        return [
            {"ratio": self.ratio, "schedule": name, "arm": self.arm, "seed": seed}
            for name in names
            for seed in seeds
        ]


def order_name(window: float, factor: float) -> str:
    return f"order-w{window:g}-f{factor:g}"


def split_name(name: str) -> tuple[str, str]:
    """(scale, run) of a ladder schedule's name."""
    scale, run = name.removeprefix(PREFIX).split("_", 1)
    return scale, run


def order_spec(window: float, factor: float) -> dict[str, Any]:
    """An ordering run: D1 upsampled by `factor` in the final `window`, its total held."""
    return {"family": "end_window", "window": window, "d1_factor": factor, "hold_total": True}


def pool_blocks(blocks: Mapping[str, int], target: str, ratio: float) -> dict[str, int]:
    """The train blocks a cell at `ratio` can draw from, per domain (D1 subsampled)."""
    wanted = min(target_blocks_wanted(dict(blocks), target, ratio), blocks[target])
    return {d: (wanted if d == target else n) for d, n in blocks.items()}


def natural_weights(blocks: Mapping[str, int], target: str, ratio: float) -> dict[str, float]:
    """Each domain's share of the blocks a cell at `ratio` can draw from (D1 subsampled)."""
    counts = pool_blocks(blocks, target, ratio)
    total = sum(counts.values())
    return {d: n / total for d, n in counts.items()}


def base_weights(ladder: Ladder, blocks: Mapping[str, int], target: str, ratio: float):
    """The base mixture every scale perturbs."""
    if ladder.base == "uniform":
        return {d: 1.0 / len(blocks) for d in blocks}
    return natural_weights(blocks, target, ratio)


def cell_plan(
    ladder: Ladder,
    name: str,
    blocks: Mapping[str, int],
    target: str,
    ratio: float,
    predicted: Mapping[str, Mapping[str, float]] | None = None,
) -> tuple[dict[str, Any], int]:
    """(schedule spec, tokens) of a ladder cell. `blocks`: train blocks per domain (the shard
    manifests); `predicted`: for the check, mixture name -> weights (the ladder's fits). Any
    scale's cell or fixed check mixture that needs more than `max_epochs` of a domain is a
    one-line ConfigError naming the cell, the domain and the ways out (`check_epochs`)."""
    check_epochs(ladder, blocks, target, ratio)
    return _cell_spec(ladder, name, blocks, target, ratio, predicted)


def check_epochs(ladder: Ladder, blocks: Mapping[str, int], target: str, ratio: float) -> None:
    """Every scale's cell and the check's natural and uniform mixtures within `max_epochs`,
    else a one-line ConfigError naming the cell that needs the most. Every ladder stream
    checks them all, so the first one built fails, before any ladder cell trains."""
    if ladder.max_epochs is None:
        return
    over = []
    for scale in (*ladder.scales, ladder.target):
        for name in ladder.names(scale.name, list(blocks)):
            if scale == ladder.target and split_name(name)[1] not in FIXED:
                continue
            for domain, epochs in cell_epochs(ladder, name, blocks, target, ratio).items():
                if epochs > ladder.max_epochs + 1e-9:
                    over.append((epochs, name, domain))
    if over:
        epochs, name, domain = max(over)
        scale, run = split_name(name)
        pool = pool_blocks(blocks, target, ratio)[domain]
        lower = "ladder.target.tokens" if scale == TARGET else "ladder.levels or the scales' tokens"
        others = f" (and {len(over) - 1} more cell-domain pairs)" if len(over) > 1 else ""
        raise _fail(
            "max_epochs",
            f"ladder cell {name} (scale {scale}, run {run}) needs {epochs:.2f} epochs of {domain} "
            f"({round(epochs * pool)} blocks; its pool holds {pool} train blocks at ratio "
            f"{ratio:g}), more than {ladder.max_epochs:g}{others}; read more {domain} documents "
            f"(domains.{domain}.max_docs), lower {lower}, or raise ladder.max_epochs (null: "
            "repetition allowed)",
        )


def cell_epochs(
    ladder: Ladder,
    name: str,
    blocks: Mapping[str, int],
    target: str,
    ratio: float,
    predicted: Mapping[str, Mapping[str, float]] | None = None,
) -> dict[str, float]:
    """Per domain, the passes over its pool a ladder cell takes (whatever the cap)."""
    spec, tokens = _cell_spec(ladder, name, blocks, target, ratio, predicted)
    return _epochs(ladder, spec, tokens, blocks, target, ratio)


def _epochs(
    ladder: Ladder,
    spec: Mapping[str, Any],
    tokens: int,
    blocks: Mapping[str, int],
    target: str,
    ratio: float,
) -> dict[str, float]:
    """Per domain, the passes over its pool a ladder cell takes: its blocks (the stream's
    apportionment of tokens // seq_len) over the pool's. An ordering run holds every domain's
    total at its natural share, so only a static mixture's shares change the counts."""
    pool = pool_blocks(blocks, target, ratio)
    if spec["family"] == "stages":
        shares = spec["phases"][0]["shares"]
    else:
        shares = natural_weights(blocks, target, ratio)
    domains = list(pool)
    counts = apportion(np.array([shares[d] for d in domains]), tokens // ladder.seq_len)
    return {d: int(n) / max(pool[d], 1) for d, n in zip(domains, counts, strict=True)}


def _cell_spec(
    ladder: Ladder,
    name: str,
    blocks: Mapping[str, int],
    target: str,
    ratio: float,
    predicted: Mapping[str, Mapping[str, float]] | None,
) -> tuple[dict[str, Any], int]:
    """(schedule spec, tokens) of a ladder cell, before its epochs are checked."""
    scale_name, run = split_name(name)
    scale = ladder.scale(scale_name)
    if scale_name == TARGET:
        if run == "natural":
            weights = natural_weights(blocks, target, ratio)
        elif run == "uniform":
            weights = dict.fromkeys(blocks, 1.0)
        else:
            weights = dict((predicted or {})[run])
        return mixture_spec(weights), scale.tokens
    if run.startswith("order-"):
        window, factor = (float(p[1:]) for p in run.removeprefix("order-").split("-"))
        natural = natural_weights(blocks, target, ratio)[target]
        if factor * natural > 1.0:
            raise ConfigError(
                f"config key 'ladder.order.factors': factor {factor:g} puts {target} at "
                f"{factor * natural:.2f} of the window, but its natural share at ratio {ratio:g} "
                f"is {natural:.3f}, so factors must be at most {1 / natural:.2f}"
            )
        return order_spec(window, factor), scale.tokens
    runs = perturbations(base_weights(ladder, blocks, target, ratio), scale.tokens, ladder.levels)
    perturbation = next(r for r in runs if r.name == run)
    return perturbation.spec(), perturbation.tokens


def _fail(key: str, problem: str) -> ConfigError:
    return ConfigError(f"config key 'ladder.{key}': {problem}")


def check_ladder(
    raw: dict[str, Any] | None,
    seeds: Sequence[int],
    schedules: Mapping[str, Any],
    ratios: Mapping[str, float],
    arms: Mapping[str, Any],
    preset: str,
    pick: Any,
    seq_len: int,
) -> Ladder | None:
    """The typed ladder of a validated `ladder:` mapping (None without one); a problem is a
    ConfigError naming the key and what is expected. `pick(value, options, key, where)`: the
    ratio label or arm, as the design loop picks it; `seq_len`: shards.seq_len."""
    taken = [name for name in schedules if name.startswith(PREFIX)]
    if taken:
        raise ConfigError(
            f"config key 'grid.schedules.{taken[0]}': names starting with {PREFIX!r} are the "
            "ladder's; rename the schedule"
        )
    if raw is None:
        return None
    scales = tuple(
        Scale(f"s{i + 1}", int(s["tokens"]), s.get("preset") or preset)
        for i, s in enumerate(raw["scales"])
    )
    tokens = [s.tokens for s in scales]
    if any(b <= a for a, b in itertools.pairwise(tokens)):
        raise _fail("scales", f"token budgets must increase from scale to scale, got {tokens}")
    target = Scale(TARGET, int(raw["target"]["tokens"]), raw["target"].get("preset") or preset)
    if target.tokens <= tokens[-1]:
        raise _fail("target.tokens", f"{target.tokens} must exceed the last scale's {tokens[-1]}")
    levels = tuple(float(v) for v in raw.get("levels", (1 / 3, 1 / 2, 1, 2, 3)))
    if 1.0 not in levels or len(set(levels)) < 5:
        raise _fail("levels", f"expected 5 or more distinct levels with 1, got {list(levels)}")
    order = raw.get("order", {})
    windows = tuple(float(v) for v in order.get("windows", (0.05, 0.1, 0.2, 0.3, 0.4)))
    factors = tuple(float(v) for v in order.get("factors", (1.0, 1.5, 2.0, 3.0, 4.0)))
    window, factor = float(order.get("window", 0.2)), float(order.get("factor", 2.0))
    for key, values, held in (("windows", windows, window), ("factors", factors, factor)):
        if len(set(values)) < 5:
            raise _fail(f"order.{key}", f"expected at least 5 distinct values, got {list(values)}")
        if held not in values:
            raise _fail(f"order.{key[:-1]}", f"{held:g} must be one of order.{key} {list(values)}")
    if max(windows) * factor > 1.0 or window * max(factors) > 1.0:
        raise _fail(
            "order",
            "window x factor must be at most 1 (D1's whole share in the window), got "
            f"{max(max(windows) * factor, window * max(factors)):g}",
        )
    return Ladder(
        scales=scales,
        target=target,
        base=raw.get("base", "natural"),
        levels=levels,
        windows=windows,
        factors=factors,
        window=window,
        factor=factor,
        seeds=tuple(int(s) for s in (raw.get("seeds") or seeds)),
        ratio=pick(raw.get("ratio"), ratios, "ratio", "grid.ratios", "ladder"),
        arm=pick(raw.get("arm"), arms, "arm", "grid.lr_arms", "ladder"),
        draws=int(raw.get("draws", 2000)),
        seed=int(raw.get("seed", 0)),
        seq_len=int(seq_len),
        max_epochs=None if raw.get("max_epochs", 1) is None else float(raw.get("max_epochs", 1)),
    )


def scale_of(name: str) -> str | None:
    """The scale of a ladder schedule's name, or None for any other schedule."""
    return split_name(name)[0] if name.startswith(PREFIX) else None
