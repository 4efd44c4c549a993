"""The rounds of the design loop and its summary for the report (torch-free).

Every measured point is a schedule at the design's ratio and arm, trained with every seed of
the study. Its objective is the mean over those seeds: all points share the same seeds, so a
seed's offset (its initialisation, its D1 subsample) shifts every point alike and drops out of
the comparison, as in the paired verdicts. The surrogate (design.surrogate) is fitted to these
means; its white-noise term absorbs what the seeds leave.

The free observations are the grid's own schedules that lie in the design (design.plan:
Design.point_of): the base schedule at least. Design cells are never part of the verdicts:
they are chosen by looking at results, so testing them there would be data snooping; they are
reported here, with a recommendation whose measurement was taken after it was proposed.

That measurement, on the seeds that chose it, is still optimistic wherever a seed's quirks
favour a region of the box (the winner's curse: design.plan). The recommendation and the
baseline are therefore also measured on fresh seeds, which no fit has seen; every fit and
observation here uses the design's own seeds only (design_rows).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl

from curriculab.analysis.statistics import paired_differences, t_interval
from curriculab.design.plan import Design, DesignError, round_of
from curriculab.design.surrogate import (
    Allowed,
    Box,
    feasible_pool,
    fit_surrogate,
    latent_predict,
    predict,
    propose,
)
from curriculab.streams.build import plan_problem
from curriculab.streams.schedules import BudgetSpec

SURFACE_POINTS = {1: 101, 2: 41}  # grid points per axis of the fitted surface (by dimension)


def allowed_points(
    design: Design, train_blocks: dict[str, int], target: str, ratio: float, budget: BudgetSpec
) -> Allowed:
    """Which points (N, D) can be built: those whose schedule the budget can fill at the
    design's ratio (under fixed_data a long window cannot hold more D1 than there is)."""

    def allowed(points: np.ndarray) -> np.ndarray:
        return np.array(
            [
                plan_problem(
                    train_blocks, target, ratio, "design", design.spec_at(point_dict(design, p)),
                    budget,
                ) is None
                for p in points
            ], dtype=bool,
        )  # fmt: skip

    return allowed


def point_dict(design: Design, point: np.ndarray) -> dict[str, float]:
    return {name: float(v) for name, v in zip(design.bounds, point, strict=True)}


def design_rows(cells: pl.DataFrame, design: Design, fresh: bool = False) -> pl.DataFrame:
    """The cells at the design's ratio and arm: on the study's seeds, which the design chooses
    with, or (fresh) on its fresh seeds, which only measure the recommendation and baseline."""
    on_fresh = pl.col("seed").is_in(list(design.fresh_seeds))
    return cells.filter(
        (pl.col("ratio") == design.ratio)
        & (pl.col("arm") == design.arm)
        & (on_fresh if fresh else ~on_fresh)
    )


def observations(
    cells: pl.DataFrame, design: Design, specs: Mapping[str, dict[str, Any]]
) -> pl.DataFrame:
    """One row per measured point: schedule, round (-1 for a grid schedule), the parameters,
    seeds, and the objective's mean over seeds with its 95% t-interval. `cells` needs ratio,
    arm, schedule, seed and objective; `specs` maps every schedule name to its spec. Fresh
    seeds are left out (fresh_measurements)."""
    mine = design_rows(cells, design)
    rows = []
    for schedule in sorted(set(mine["schedule"]) & set(specs)):
        point = design.point_of(specs[schedule])
        if point is None:
            continue
        values = mine.filter(pl.col("schedule") == schedule).sort("seed")["objective"].to_numpy()
        mean, low, high = t_interval(values)
        round_ = round_of(schedule)
        rows.append({
            "schedule": schedule, "round": -1 if round_ is None else round_, **point,
            "seeds": len(values), "objective": mean, "ci_low": low, "ci_high": high,
        })  # fmt: skip
    if not rows:
        raise DesignError(f"design: no measured point of schedule {design.base!r} yet")
    seeds = {row["seeds"] for row in rows}
    if len(seeds) > 1:
        raise DesignError(f"design: points have different numbers of seeds {sorted(seeds)}")
    return pl.DataFrame(rows).sort("round", "schedule")


def seed_noise(cells: pl.DataFrame, design: Design, names: list[str]) -> float | None:
    """The variance of a point's seed mean that pairing by seed cannot remove: the point x
    seed interaction of the two-way layout (points x seeds) of the schedules `names`, its
    residual mean square divided by the seeds. A seed's offset shared by every point is not
    noise here: it moves every seed mean alike. None with fewer than two points or seeds."""
    mine = design_rows(cells, design).filter(pl.col("schedule").is_in(names))
    wide = mine.pivot(on="seed", index="schedule", values="objective").drop("schedule")
    table = wide.to_numpy().astype(np.float64)
    points, seeds = table.shape
    if points < 2 or seeds < 2 or not np.isfinite(table).all():
        return None
    residual = table - table.mean(1, keepdims=True) - table.mean(0, keepdims=True) + table.mean()
    return float((residual**2).sum() / ((points - 1) * (seeds - 1)) / seeds)


def xy(design: Design, obs: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(points (N, D), seed-mean objective (N,)) of the observations."""
    return obs.select(list(design.bounds)).to_numpy(), obs["objective"].to_numpy()


def round_seed(design: Design, round_: int) -> int:
    """The seed of a round's candidate set and fit (a fresh Sobol set every round)."""
    return design.seed * 1000 + round_


def propose_round(
    design: Design,
    round_: int,
    obs: pl.DataFrame | None,
    allowed: Allowed,
    noise: float | None = None,
) -> list[dict[str, Any]]:
    """The points of one round, each with its schedule name, role, parameters, spec and (after
    round 0) the prediction made before it was run: posterior mean and predictive sd.
    noise: the seed mean's noise variance (seed_noise)."""
    box = Box.of(design.bounds)
    seed = round_seed(design, round_)
    if round_ == 0:
        pool = feasible_pool(box, seed, allowed)
        if len(pool) < design.initial:
            raise DesignError(f"design: only {len(pool)} feasible initial points; widen the box")
        points, mean, sd = box.scale(pool[: design.initial]), None, None
    else:
        x, y = xy(design, obs)
        points = propose(box, x, y, design.size(round_), seed, allowed=allowed, noise=noise)
        if len(points) < design.size(round_):
            raise DesignError(f"design round {round_}: the box has no unmeasured point left")
        mean, sd = predict(box, x, y, points, seed, noise)
    out = []
    for i, (name, p) in enumerate(zip(design.names(round_), points, strict=True)):
        spec = design.spec_at(point_dict(design, p))  # the values rounded (Design.spec_at)
        out.append({
            "schedule": name, "round": round_, "role": design.role(round_, i),
            "point": {k: spec[k] for k in design.bounds}, "spec": spec,
            "predicted": None if mean is None else {"mean": float(mean[i]), "sd": float(sd[i])},
        })  # fmt: skip
    return out


def surface(
    design: Design,
    obs: pl.DataFrame,
    allowed: Allowed,
    focus: dict[str, float],
    noise: float | None = None,
):
    """The fitted objective over the box (for the report): a line over one parameter, a grid
    over two; with more, a grid over the first two with the rest held at `focus` (the
    recommended point). Columns: the plotted parameters, mean, sd (of the objective itself,
    the latent function: surrogate.latent_predict), feasible."""
    box = Box.of(design.bounds)
    x, y = xy(design, obs)
    gp = fit_surrogate(box, x, y, round_seed(design, design.final_round + 1), noise)
    shown = list(design.bounds)[:2]
    axes = [np.linspace(*design.bounds[n], SURFACE_POINTS[len(shown)]) for n in shown]
    mesh = np.meshgrid(*axes, indexing="ij")
    points = np.column_stack([
        mesh[shown.index(n)].ravel() if n in shown else np.full(mesh[0].size, focus[n])
        for n in design.bounds
    ])  # fmt: skip
    mean, sd = latent_predict(gp, box.unit(points))
    table = pl.DataFrame({n: points[:, list(design.bounds).index(n)] for n in shown})
    table = table.with_columns(
        mean=pl.Series(mean), sd=pl.Series(sd), feasible=pl.Series(allowed(points))
    )
    return table, fit_record(gp, y, noise)


def fit_record(gp: Any, y: np.ndarray, noise: float | None) -> dict[str, Any]:
    """What the fit found, in nats/token: the sd of the objective's variation over the box
    (signal) against the sd of a seed mean (noise: the seeds' own and what the kernel leaves),
    the length scales (unit-cube units) and the kernel. A signal below the noise means the
    surface is flat within noise."""
    signal, white = gp.kernel_.k1, gp.kernel_.k2
    scale = float(np.std(y)) or 1.0  # normalize_y: the kernel is in units of y's sd
    return {
        "kernel": str(gp.kernel_),
        "signal_sd": float(np.sqrt(signal.k1.constant_value)) * scale,
        "noise_sd": float(np.sqrt(white.noise_level * scale**2 + (noise or 0.0))),
        "seed_noise_sd": None if noise is None else float(np.sqrt(noise)),
        "length_scales": np.atleast_1d(signal.k2.length_scale).astype(float).tolist(),
    }


def _measured(values: np.ndarray) -> dict[str, Any] | None:
    """Mean over seeds with its 95% t-interval (None without a value)."""
    if not len(values):
        return None
    mean, low, high = t_interval(values)
    return {"mean": mean, "ci_low": low, "ci_high": high, "seeds": len(values)}


def _versus(rows: pl.DataFrame, schedule: str, other: str | None) -> dict[str, Any] | None:
    """schedule minus other, paired by seed over the seeds both have (mean, 95% t-interval)."""
    if other is None or other == schedule:
        return None
    pairs = paired_differences(
        rows.filter(pl.col("schedule").is_in([other, schedule])), other, "objective"
    ).filter(pl.col("schedule") == schedule)
    if not pairs.height:
        return None
    return {"schedule": other, **_measured(pairs["difference"].to_numpy())}


def fresh_measurements(cells: pl.DataFrame, design: Design) -> pl.DataFrame:
    """Per schedule measured on the fresh seeds: the objective's mean and 95% t-interval
    (columns schedule, fresh, fresh_low, fresh_high, fresh_seeds); empty without any."""
    rows = design_rows(cells, design, fresh=True)
    out = []
    for schedule in sorted(set(rows["schedule"])):
        values = rows.filter(pl.col("schedule") == schedule)["objective"].to_numpy()
        m = _measured(values)
        out.append({"schedule": schedule, "fresh": m["mean"], "fresh_low": m["ci_low"],
                    "fresh_high": m["ci_high"], "fresh_seeds": m["seeds"]})  # fmt: skip
    schema = {"schedule": pl.String, "fresh_seeds": pl.Int64}
    schema |= {k: pl.Float64 for k in ("fresh", "fresh_low", "fresh_high")}
    return pl.DataFrame(out, schema=schema)


def recommendation(
    design: Design, obs: pl.DataFrame, proposal: dict[str, Any], cells: pl.DataFrame, baseline: str
) -> dict[str, Any]:
    """The recommended curriculum (the final round's point): its prediction made before it ran,
    its measurement (mean over seeds, 95% t-interval) and its seed-paired difference from the
    baseline schedule and from the best grid schedule of the design, on the design's seeds
    (which chose it, so optimistic: the winner's curse); and on the fresh seeds, its
    measurement and its difference from the baseline on the same seeds (unbiased)."""
    name = proposal["schedule"]
    row = obs.filter(pl.col("schedule") == name).row(0, named=True)
    mine, fresh = design_rows(cells, design), design_rows(cells, design, fresh=True)
    grid = obs.filter(pl.col("round") < 0).sort("objective")
    best_grid = grid["schedule"][0] if grid.height else None
    return {
        "schedule": name, "point": proposal["point"],
        "spec": proposal["spec"], "predicted": proposal["predicted"],
        "measured": {"mean": row["objective"], "ci_low": row["ci_low"], "ci_high": row["ci_high"],
                     "seeds": row["seeds"]},
        "best_grid": best_grid,
        "versus_baseline": _versus(mine, name, baseline),
        "versus_best_grid": _versus(mine, name, best_grid),
        "fresh_seeds": list(design.fresh_seeds),
        "fresh": _measured(fresh.filter(pl.col("schedule") == name)["objective"].to_numpy()),
        "fresh_versus_baseline": _versus(fresh, name, baseline),
    }  # fmt: skip
