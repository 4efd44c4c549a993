"""The ordering ladder: the best end window at each scale, and where it moves one step up.

No mixture method says where in training the data should go. At every scale the ladder trains
the end window (D1 upsampled by `factor` in the final `window` of training, D1's total held at
its natural share: only *when* changes) at five or more window lengths with the factor held,
and at five or more factors with the window held. Per parameter p and scale, the objective is
fitted with a quadratic in log p over every level and seed (scipy `curve_fit`, with its
covariance):

    y = c0 + c1 t + c2 t^2,  t = log p

and the best p is its minimiser on the levels' range (a boundary when the quadratic is concave
or its vertex lies outside: the ladder then says the best value is at an edge, not beyond it).
Its interval: draws of (c0, c1, c2) from a multivariate t (the fit's covariance, its residual
degrees of freedom) through the same minimiser, 2.5% and 97.5% quantiles (the minimiser is not
smooth at the edges, so no delta method here).

One step up, log p* is taken to be linear in log B (B the scale's tokens), fitted to every
scale by least squares; the draws of every scale's optimum carry it to an interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize


def quadratic(t: np.ndarray, c0: float, c1: float, c2: float) -> np.ndarray:
    return c0 + c1 * t + c2 * np.asarray(t) ** 2


@dataclass(frozen=True)
class OrderFit:
    """The objective as a quadratic in the log of one schedule parameter, at one scale."""

    params: np.ndarray  # (c0, c1, c2)
    cov: np.ndarray  # (3, 3)
    low: float  # the smallest level (the parameter, not its log)
    high: float  # the largest level
    residual_sd: float
    n: int


def fit_order(levels: np.ndarray, y: np.ndarray) -> OrderFit:
    """Least-squares quadratic in log(levels) to objectives y (one per cell)."""
    x, y = np.asarray(levels, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(np.unique(x)) < 5:
        raise ValueError(f"an ordering fit needs at least 5 levels, got {len(np.unique(x))}")
    t = np.log(x)
    params, cov = optimize.curve_fit(quadratic, t, y, p0=(float(np.mean(y)), 0.0, 0.0))
    residual = y - quadratic(t, *params)
    dof = max(len(y) - 3, 1)
    sd = float(np.sqrt(residual @ residual / dof))
    return OrderFit(params, cov, float(x.min()), float(x.max()), sd, len(y))


def argmin(params: np.ndarray, low: float, high: float) -> np.ndarray:
    """(...,) the minimisers in [low, high] (of p itself) of quadratics (..., 3) in log p."""
    params = np.asarray(params, dtype=np.float64)
    t_low, t_high = np.log(low), np.log(high)
    c1, c2 = params[..., 1], params[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        vertex = np.where(c2 > 0, -c1 / (2.0 * c2), np.nan)
    inside = np.clip(np.nan_to_num(vertex, nan=t_low), t_low, t_high)
    candidates = np.stack([np.full_like(c1, t_low), np.full_like(c1, t_high), inside], axis=-1)
    values = quadratic(candidates, params[..., :1], params[..., 1:2], params[..., 2:3])
    best = np.take_along_axis(candidates, values.argmin(axis=-1)[..., None], axis=-1)[..., 0]
    return np.exp(best)


def order_optimum(fit: OrderFit, seed: int, draws: int) -> tuple[float, np.ndarray]:
    """(the best level, (draws,) normal draws of it through the coefficients' covariance)."""
    rng = np.random.default_rng(seed)
    cov = np.nan_to_num(fit.cov)
    # multivariate t with the fit's residual degrees of freedom: its variance is estimated
    dof = max(fit.n - 3, 1)
    scale = np.sqrt(dof / rng.chisquare(dof, size=(draws, 1)))
    drawn = fit.params + scale * rng.multivariate_normal(
        np.zeros(3), cov, size=draws, method="eigh"
    )
    return float(argmin(fit.params, fit.low, fit.high)), argmin(drawn, fit.low, fit.high)


def predict_order(tokens: np.ndarray, optima: np.ndarray, target: float) -> np.ndarray:
    """(...,) the best level at `target` tokens from the best levels (..., S) at `tokens` (S,):
    log p* linear in log B, least squares over every scale."""
    t = np.log(np.asarray(tokens, dtype=np.float64))
    y = np.log(np.asarray(optima, dtype=np.float64))
    t_mean = t.mean()
    slope = ((t - t_mean) * (y - y.mean(axis=-1, keepdims=True))).sum(axis=-1)
    slope = slope / ((t - t_mean) ** 2).sum()
    return np.exp(y.mean(axis=-1) + slope * (np.log(target) - t_mean))
