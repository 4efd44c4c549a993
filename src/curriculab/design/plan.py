"""The design loop's plan (docs/stages/design.md): its box, its rounds and the names of their cells.

Read at DAG time (torch- and scikit-learn-free). A study's `design:` key names one schedule of
the grid (its family and every parameter the design does not vary stay fixed) and a box of the
parameters it varies. The loop then runs a fixed number of rounds:

- round 0: `initial` points of a scrambled Sobol sequence (the feasible ones, in order);
- rounds 1..`rounds`: `per_round` points each, from a Gaussian process fitted to every point
  measured so far (curriculab.design.loop);
- the last round (`rounds` + 1): one point, the surrogate's predicted optimum, which is
  trained and measured like any other: the recommended curriculum, whose measured objective
  checks its prediction.

Every round has a fixed number of points, so the name of every design cell is known before any
has run (`design_r{round}_{i}`); only its parameters wait for the round's proposals file. The
DAG is therefore fixed from the start (a dry run shows every job), and each round's proposals
are an ordinary Snakemake target whose inputs are the cells of the rounds before it.

The winner's curse: the recommendation is the point whose measurements on the study's seeds
looked best, so where a seed's quirks (its initialisation, its D1 subsample) favour a region of
the box, the same seeds measure the recommendation optimistically. It is therefore also trained
on `fresh_seeds`, seeds the design never used, beside the baseline on the same fresh seeds so
that the fresh comparison stays paired: that measurement is the unbiased one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from curriculab.errors import ConfigError, CurriculabError
from curriculab.streams.schedules import SELECT

PREFIX = "design_r"
NAME = re.compile(r"design_r(\d+)_(\d+)")
DIGITS = 4  # decimals kept of a proposed parameter value (specs stay readable and exact)


class DesignError(CurriculabError, ValueError):
    """A design round that cannot be proposed (one line, naming what to change)."""


@dataclass(frozen=True)
class Design:
    """The design of a study: the schedule it varies, the box, the rounds, where its cells run."""

    base: str  # the grid schedule whose family and other parameters every design point keeps
    spec: dict[str, Any]  # that schedule's spec ({"family": ..., **parameters})
    bounds: dict[str, tuple[float, float]]  # parameter -> (low, high)
    initial: int  # Sobol points of round 0
    rounds: int  # surrogate rounds after round 0
    per_round: int  # proposals per surrogate round
    ratio: str  # ratio label of every design cell
    arm: str  # learning-rate arm of every design cell
    seed: int  # seeds the Sobol points and the surrogate's fits
    fresh_seeds: tuple[int, ...] = ()  # seeds of the recommendation's unbiased measurement

    def params(self) -> dict[str, Any]:
        """A plain mapping (a rule's params); `Design.of` reads it back."""
        return asdict(self)

    @classmethod
    def of(cls, params: Mapping[str, Any]) -> Design:
        return cls(**{
            **params, "bounds": {k: tuple(v) for k, v in params["bounds"].items()},
            "fresh_seeds": tuple(params.get("fresh_seeds", ())),
        })  # fmt: skip

    def for_rounds(self) -> Design:
        """What a round's proposals depend on: the design without its fresh seeds (which only
        the summary reads), so that changing them reruns no round."""
        return replace(self, fresh_seeds=())

    @property
    def recommended(self) -> str:
        """The schedule name of the recommended curriculum (the final round's one point)."""
        return self.names(self.final_round)[0]

    @property
    def final_round(self) -> int:
        """The round of the recommended curriculum."""
        return self.rounds + 1

    def size(self, round_: int) -> int:
        """Points of a round."""
        if round_ == 0:
            return self.initial
        return 1 if round_ == self.final_round else self.per_round

    def names(self, round_: int) -> list[str]:
        """Schedule names of a round's points."""
        return [f"{PREFIX}{round_}_{i}" for i in range(self.size(round_))]

    @property
    def all_names(self) -> list[str]:
        return [name for r in range(self.final_round + 1) for name in self.names(r)]

    def cells(self, names: Sequence[str], seeds: Sequence[int]) -> list[dict[str, Any]]:
        """The cells (ratio, schedule, arm, seed) of schedules `names` at the design's ratio
        and arm, every seed."""
        return [
            {"ratio": self.ratio, "schedule": name, "arm": self.arm, "seed": seed}
            for name in names
            for seed in seeds
        ]

    def role(self, round_: int, index: int) -> str:
        """What a point of a round is for (the report's words)."""
        if round_ == 0:
            return "initial (Sobol)"
        if round_ == self.final_round:
            return "recommended"
        return "predicted optimum" if index == 0 else "expected improvement"

    def spec_at(self, point: Mapping[str, float]) -> dict[str, Any]:
        """The schedule spec of a point: the base spec with the design's parameters set."""
        return {**self.spec, **{k: round(float(point[k]), DIGITS) for k in self.bounds}}

    def point_of(self, spec: Mapping[str, Any]) -> dict[str, float] | None:
        """The point of a grid schedule that lies in the design (same family, same fixed
        parameters, varied parameters inside the box), else None: a free observation."""
        fixed = {k: v for k, v in self.spec.items() if k not in self.bounds}
        if {k: v for k, v in spec.items() if k not in self.bounds} != fixed:
            return None
        point = {}
        for name, (low, high) in self.bounds.items():
            value = spec.get(name)
            if not isinstance(value, int | float) or not low <= value <= high:
                return None
            point[name] = float(value)
        return point


def design_cells(study: Any) -> dict[int | str, list[dict[str, Any]]]:
    """Every cell the design adds to the study, in the groups that are packed apart: round ->
    its points at every seed of the study; "fresh": the recommendation at the fresh seeds
    (beside the final round); "fresh_baseline": the baseline at the fresh seeds (which waits
    for nothing). {} without a design."""
    design: Design | None = study.design
    if design is None:
        return {}
    out: dict[int | str, list[dict[str, Any]]] = {
        r: design.cells(design.names(r), study.seeds) for r in range(design.final_round + 1)
    }
    if design.fresh_seeds:
        out["fresh"] = design.cells([design.recommended], design.fresh_seeds)
        out["fresh_baseline"] = design.cells([study.baseline], design.fresh_seeds)
    return out


def cells_read(study: Any, round_: int | None) -> list[dict[str, Any]]:
    """The cells (ratio, schedule, arm, seed) a round's fit reads: the grid's schedules that
    lie in the design and every design cell of the rounds before it, all at the design's ratio
    and arm with every seed. Round 0 (a Sobol design) reads none, so it runs beside the grid's
    training. round_ None: the summary's, which also reads the baseline's cells (the
    recommendation is compared with them, paired by seed) and the fresh seeds' cells."""
    design: Design = study.design
    if round_ == 0:
        return []
    last = design.final_round if round_ is None else round_ - 1
    names = [*design_grid(study), *(n for r in range(last + 1) for n in design.names(r))]
    if round_ is not None:
        return design.cells(names, study.seeds)
    if study.baseline not in names:
        names.append(study.baseline)
    fresh = design_cells(study)
    return [
        *design.cells(names, study.seeds),
        *fresh.get("fresh", []),
        *fresh.get("fresh_baseline", []),
    ]


def design_grid(study: Any) -> dict[str, dict[str, Any]]:
    """The grid's schedules that lie in the study's design (its free observations)."""
    return {n: s for n, s in study.schedules.items() if study.design.point_of(s) is not None}


def round_of(name: str) -> int | None:
    """The round of a design schedule's name, or None for a grid schedule."""
    match = NAME.fullmatch(name)
    return int(match[1]) if match else None


def _fail(key: str, problem: str) -> ConfigError:
    return ConfigError(f"config key 'design.{key}': {problem}")


def fresh_seeds(count: int | None, seeds: Sequence[int]) -> tuple[int, ...]:
    """`count` seeds the study does not use (null: as many as it does): the ones after its
    largest, so that adding a grid seed below them changes none."""
    count = len(seeds) if count is None else count
    if count == 1:
        raise _fail("fresh_seeds", "expected 0 (none) or at least 2 (a t-interval needs two)")
    return tuple(max(seeds) + 1 + i for i in range(count))


def check_design(
    raw: dict[str, Any] | None,
    schedules: Mapping[str, dict[str, Any]],
    ratios: Mapping[str, float],
    arms: Mapping[str, Any],
    seeds: Sequence[int],
) -> Design | None:
    """The typed design of a validated `design:` mapping (None without one); a problem is a
    ConfigError naming the key and what is expected. seeds: the study's (grid.seeds)."""
    taken = [name for name in schedules if name.startswith("design_")]
    if taken:
        raise ConfigError(
            f"config key 'grid.schedules.{taken[0]}': names starting with 'design_' are the "
            "design loop's; rename the schedule"
        )
    if raw is None:
        return None
    base = raw["schedule"]
    if base not in schedules:
        raise _fail("schedule", f"{base!r} is not one of the schedules {sorted(schedules)}")
    spec = schedules[base]
    if "trunk" in spec:
        raise _fail("schedule", f"{base!r} is on a trunk; design cells train from step 0")
    if SELECT in spec:
        raise _fail("schedule", f"{base!r} trains on a selection; design cells take the whole pool")
    bounds = {}
    for name, (low, high) in raw["parameters"].items():
        if not isinstance(spec.get(name), int | float) or isinstance(spec.get(name), bool):
            raise _fail(
                f"parameters.{name}",
                f"schedule {base!r} has no numeric parameter {name!r}; vary one it sets "
                f"({sorted(k for k, v in spec.items() if isinstance(v, int | float))})",
            )
        if not low < high:
            raise _fail(
                f"parameters.{name}", f"expected [low, high] with low < high, got {[low, high]}"
            )
        bounds[name] = (float(low), float(high))
    ratio = pick(raw.get("ratio"), ratios, "ratio", "grid.ratios")
    arm = pick(raw.get("arm"), arms, "arm", "grid.lr_arms")
    return Design(
        base=base,
        spec=dict(spec),
        bounds=bounds,
        initial=int(raw.get("initial", 4)),
        rounds=int(raw.get("rounds", 2)),
        per_round=int(raw.get("per_round", 2)),
        ratio=ratio,
        arm=arm,
        seed=int(raw.get("seed", 0)),
        fresh_seeds=fresh_seeds(raw.get("fresh_seeds"), seeds),
    )


def pick(
    value: Any, options: Mapping[str, Any], key: str, where: str, stage: str = "design"
) -> str:
    """The ratio label or arm a design (or ladder: `stage`) runs at: the one given, or the
    grid's only one. options: label -> value (a ratio's number; an arm's settings)."""
    if value is None:
        if len(options) != 1:
            raise ConfigError(
                f"config key '{stage}.{key}': the grid has several ({list(options)}); name the "
                "one to use"
            )
        return next(iter(options))
    for label, option in options.items():
        if value == label or (key == "ratio" and value == option):
            return label
    raise ConfigError(
        f"config key '{stage}.{key}': {value!r} is not one of {where} {list(options)}"
    )
