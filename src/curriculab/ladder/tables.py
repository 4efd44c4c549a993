"""The ladder's tables (torch-free): every scale's mixture optimum and best end window from
its cells, their prediction at the target scale, and the check there (docs/stages/ladder.md).

Mixtures (curriculab.ladder.mixture, .fit, .predict): per scale, the objective's response to
every domain's amount is fitted over that domain's perturbation runs and the base run, every
seed; the optimum under the budget gets a delta-method or bootstrap interval; both rules predict
the target with an interval from the line's lack of fit and the seeds' shared quirks; every
cell's epochs are reported. Orders (curriculab.ladder.order): per scale and schedule parameter,
a quadratic in its log; the interval comes from draws of the coefficients. Backtests: the top
scale predicted from the ones below it, against what it measured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from curriculab.analysis.signflip import sign_flip_p
from curriculab.analysis.statistics import CONFIDENCE, holm_verdicts, t_interval, t_tests
from curriculab.ladder.fit import interval, response
from curriculab.ladder.mixture import (
    check_mixtures,
    epochs_table,
    flag_predictions,
    optimum_table,
    prediction_table,
    scale_fits,
    seed_optima,
)
from curriculab.ladder.order import fit_order, order_optimum, predict_order, quadratic
from curriculab.ladder.plan import (
    CHECK,
    PREFIX,
    TARGET,
    Ladder,
    Perturbation,
    base_weights,
    natural_weights,
    order_name,
    perturbations,
)


def _runs_of(cells: pl.DataFrame, scale: str) -> pl.DataFrame:
    """A scale's cells with their run name (the schedule name less `ladder_{scale}_`)."""
    prefix = f"{PREFIX}{scale}_"
    return cells.filter(pl.col("schedule").str.starts_with(prefix)).with_columns(
        run=pl.col("schedule").str.strip_prefix(prefix)
    )


def _mean_rows(values: np.ndarray) -> dict[str, float]:
    mean, low, high = t_interval(values)
    return {"objective": mean, "ci_low": low, "ci_high": high, "seeds": len(values)}


def mixture_points(
    runs: Sequence[Perturbation], objective: pl.DataFrame, scale: str, tokens: int
) -> list[dict[str, Any]]:
    """Per domain and level: the domain's amount (fraction of the budget) and the objective's
    mean over seeds with its 95% t-interval (the points the report draws each fit through)."""
    rows = []
    for domain in runs[0].amounts:
        for r in (r for r in runs if r.domain in (None, domain)):
            values = objective.filter(pl.col("run") == r.name)["objective"].to_numpy()
            rows.append({
                "scale": scale, "domain": domain, "level": r.level,
                "amount": r.amounts[domain] / tokens, **_mean_rows(values),
            })  # fmt: skip
    return rows


def order_fits(
    ladder: Ladder, objective: pl.DataFrame, scale: str, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, np.ndarray]]:
    """Per schedule parameter (window, factor): the best value at this scale with its interval,
    the points, and the best value's draws."""
    rows, points, draws = [], [], {}
    for parameter, levels in (("window", ladder.windows), ("factor", ladder.factors)):
        names = {
            order_name(w, f): (w if parameter == "window" else f)
            for w, f in ladder.order_points()
            if (f == ladder.factor if parameter == "window" else w == ladder.window)
        }
        mine = objective.filter(pl.col("run").is_in(list(names)))
        x = np.array([names[run] for run in mine["run"]])
        fit = fit_order(x, mine["objective"].to_numpy())
        best, drawn = order_optimum(fit, seed, ladder.draws)
        low, high = interval(drawn)
        rows.append({
            "scale": scale, "parameter": parameter, "best": best, "ci_low": float(low),
            "ci_high": float(high), "at_edge": bool(np.isclose(best, min(levels))
                                                    or np.isclose(best, max(levels))),
            "residual_sd": fit.residual_sd, "n": fit.n,
            **dict(zip(("c0", "c1", "c2"), map(float, fit.params), strict=True)),
        })  # fmt: skip
        for run, value in names.items():
            values = mine.filter(pl.col("run") == run)["objective"].to_numpy()
            points.append({"scale": scale, "parameter": parameter, "value": value,
                           **_mean_rows(values)})  # fmt: skip
        draws[parameter] = drawn
    return rows, points, draws


def ladder_fits(
    ladder: Ladder,
    cells: pl.DataFrame,
    blocks: Mapping[str, int],
    target: str,
    ratio: float,
) -> dict[str, Any]:
    """Every scale's fits, both predictions at the target scale, the backtests, the check's
    mixtures and every cell's epochs. `cells`: schedule, seed and objective of the ladder's
    cells."""
    domains = list(blocks)
    base = base_weights(ladder, blocks, target, ratio)
    tokens = np.array([s.tokens for s in ladder.scales], dtype=np.float64)
    optima, points, orders, order_points, seeds = [], [], [], [], []
    order_draws: dict[str, list[np.ndarray]] = {"window": [], "factor": []}
    for i, scale in enumerate(ladder.scales):
        objective = _runs_of(cells, scale.name)
        runs = perturbations(base, scale.tokens, ladder.levels)
        fits = scale_fits(runs, objective, scale.tokens)
        optima.append(optimum_table(fits, scale.name, scale.tokens, ladder.seed + i))
        seeds.append(seed_optima(runs, objective, scale.tokens, fits))
        points += mixture_points(runs, objective, scale.name, scale.tokens)
        rows, pts, drawn_order = order_fits(ladder, objective, scale.name, ladder.seed + i)
        orders += rows
        order_points += pts
        for parameter, d in drawn_order.items():
            order_draws[parameter].append(d)
    weights = np.array([t["weight"].to_numpy() for t in optima])  # (S, K)
    measured = tuple(np.array([t[c].to_numpy() for t in optima]) for c in ("low", "high"))
    seeds_snk = np.stack(seeds)  # (S, n, K)
    predictions = prediction_table(
        tokens, weights, seeds_snk, measured, ladder.target.tokens, domains, ladder.draws,
        ladder.seed,
    )  # fmt: skip
    backtest = prediction_table(
        tokens[:-1], weights[:-1], seeds_snk[:-1], tuple(m[:-1] for m in measured), tokens[-1],
        domains, ladder.draws, ladder.seed,
    ).join(
        optima[-1].select("domain", pl.col("weight").alias("fitted"),
                          pl.col("ci_low").alias("fitted_low"),
                          pl.col("ci_high").alias("fitted_high")),
        on="domain",
    )  # fmt: skip
    check = check_mixtures(predictions, dict(zip(domains, map(float, weights[0]), strict=True)))
    check["natural"] = natural_weights(blocks, target, ratio)
    check["uniform"] = {d: 1.0 / len(domains) for d in domains}
    epochs = epochs_table(ladder, blocks, target, ratio, domains, check)
    orders_frame = pl.DataFrame(orders)
    return {
        "optima": pl.concat(optima),
        "points": pl.DataFrame(points),
        "curves": fitted_curves(ladder, pl.concat(optima), pl.DataFrame(points), orders_frame),
        "predictions": flag_predictions(predictions, epochs),
        "backtest": backtest,
        "epochs": epochs,
        "orders": orders_frame,
        "order_points": pl.DataFrame(order_points),
        "order_predictions": order_predictions(ladder, tokens, orders_frame, order_draws),
        "check": check,
    }


def order_predictions(
    ladder: Ladder,
    tokens: np.ndarray,
    orders: pl.DataFrame,
    order_draws: Mapping[str, Sequence[np.ndarray]],
) -> pl.DataFrame:
    """Per schedule parameter: the best value at the target and at the top scale from the
    scales below it (the backtest), each with its interval from every scale's draws."""
    rows = []
    levels = {"window": ladder.windows, "factor": ladder.factors}
    for parameter, drawn in order_draws.items():
        best = orders.filter(pl.col("parameter") == parameter)["best"].to_numpy()
        per_scale = np.stack(drawn, axis=1)  # (draws, S)
        cap = 1.0 if parameter == "window" else np.inf  # a window is at most the whole run
        for kind, upto, at in (("target", len(tokens), ladder.target.tokens),
                               ("backtest", len(tokens) - 1, tokens[-1])):  # fmt: skip
            point = min(float(predict_order(tokens[:upto], best[:upto], at)), cap)
            low, high = interval(predict_order(tokens[:upto], per_scale[:, :upto], at))
            rows.append({
                "parameter": parameter, "kind": kind, "tokens": float(at), "best": point,
                "ci_low": float(min(low, cap)), "ci_high": float(min(high, cap)),
                "outside_levels": not min(levels[parameter]) <= point <= max(levels[parameter]),
                "fitted": float(best[-1]) if kind == "backtest" else None,
            })  # fmt: skip
    return pl.DataFrame(rows)


def fitted_curves(
    ladder: Ladder, optima: pl.DataFrame, points: pl.DataFrame, orders: pl.DataFrame, n: int = 40
) -> pl.DataFrame:
    """Every fit evaluated over its levels' range (the report draws them through the points):
    kind "mixture" (series: a domain; x: its amount, fraction of the budget) or "order" (series:
    window or factor; x: its value)."""
    rows = []
    for fit in optima.iter_rows(named=True):
        mine = points.filter(pl.col("scale") == fit["scale"], pl.col("domain") == fit["domain"])
        x = np.geomspace(mine["amount"].min(), mine["amount"].max(), n)
        y = response(x, fit["k"], fit["a"], fit["b"], fit["c"])
        rows += [{"kind": "mixture", "scale": fit["scale"], "series": fit["domain"], "x": float(u),
                  "y": float(v)} for u, v in zip(x, y, strict=True)]  # fmt: skip
    levels = {"window": ladder.windows, "factor": ladder.factors}
    for fit in orders.iter_rows(named=True):
        x = np.geomspace(min(levels[fit["parameter"]]), max(levels[fit["parameter"]]), n)
        y = quadratic(np.log(x), fit["c0"], fit["c1"], fit["c2"])
        rows += [{"kind": "order", "scale": fit["scale"], "series": fit["parameter"],
                  "x": float(u), "y": float(v)} for u, v in zip(x, y, strict=True)]  # fmt: skip
    return pl.DataFrame(rows)


def check_table(
    cells: pl.DataFrame, alpha: float = 1.0 - CONFIDENCE
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The check at the target scale: per mixture, the objective's mean over seeds (95%
    t-interval); per predicted mixture and alternative, the paired difference (prediction minus
    alternative, by seed) with its t-interval and Holm-adjusted p-value over all of them (one
    family). `cells`: schedule, seed, objective of the check's cells."""
    prefix = f"{PREFIX}{TARGET}_"
    mine = cells.filter(pl.col("schedule").str.starts_with(prefix)).with_columns(
        mixture=pl.col("schedule").str.strip_prefix(prefix)
    )
    means = pl.DataFrame([
        {"mixture": m, **_mean_rows(mine.filter(pl.col("mixture") == m)["objective"].to_numpy())}
        for m in CHECK
    ])  # fmt: skip
    wide = mine.pivot("mixture", index="seed", values="objective").sort("seed")
    rows = []
    for predicted in ("predicted_all", "predicted_autoscale"):
        for other in ("natural", "uniform", "smallest"):
            diff = (wide[predicted] - wide[other]).drop_nulls().to_numpy()
            sd = float(diff.std(ddof=1)) if len(diff) > 1 else float("nan")
            rows.append({"predicted": predicted, "against": other, "seeds": len(diff),
                         "estimate": float(diff.mean()), "sd": sd,
                         "p_signflip": sign_flip_p(diff)})  # fmt: skip
    tests = pl.DataFrame(rows)
    low, high, p = t_tests(tests["estimate"].to_numpy(), tests["sd"].to_numpy(),
                           tests["seeds"].to_numpy().astype(float))  # fmt: skip
    holm = holm_verdicts(tests["estimate"].to_numpy(), p, alpha)
    flips = holm_verdicts(tests["estimate"].to_numpy(), tests["p_signflip"].to_numpy(), alpha)
    tests = tests.with_columns(
        ci_low=pl.Series(low), ci_high=pl.Series(high), p_value=pl.Series(p),
        p_holm=pl.Series(holm["p_adjusted"]),
        p_signflip_holm=pl.Series(flips["p_adjusted"]),
        verdict=pl.Series(np.where(holm["verdict"] == "supported", "prediction better",
                                   np.where(holm["verdict"] == "contradicted",
                                            "prediction worse", "no difference shown"))),
    )  # fmt: skip
    return means, tests
