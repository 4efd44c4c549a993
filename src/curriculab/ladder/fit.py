"""Mixture optimisation at one scale (AutoScale's step at one budget, and beyond).

At one scale (a token budget B), every domain's amount is perturbed with the others fixed, at
five or more levels, every level with every seed. The objective's response to domain i's amount
x_i (a fraction of B) is fitted with

    f_i(x) = k_i (x + a_i)^(-b_i) + c_i

(nonlinear least squares by variable projection: k and c exactly, (a, b) by a grid and scipy's
L-BFGS-B; with the parameter covariance). AutoScale
(arXiv 2407.20177) fits (x + a)^(-b) + c to three points, with no residual and so no
uncertainty; here k_i makes a domain's weight in the objective explicit, and five levels x seeds
leave residuals. The optimum under the budget minimises sum_i f_i(x_i) subject to sum_i x_i = 1,
x_i >= 0. It has a closed form given a Lagrange multiplier (k_i b_i (x_i + a_i)^(-b_i-1) = lambda
where x_i > 0), found by root finding (`optimum`). Its interval comes from the fits' covariance
by the delta method (`optimum_delta`: the optimum's Jacobian in every parameter, by central
differences). Drawing the parameters themselves from their normal approximation and
recomputing the optimum over-covers (about 100% for a nominal 95% in tests/ladder/test_fit.py's
simulation): k, a and b trade off along a direction that barely moves the optimum.

The prediction across scales and its interval live in curriculab.ladder.predict. Each seed's own
optimum (`seed_optimum`: its own k and c at the pooled a and b) feeds its seed part there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

LEVELS = (1 / 3, 1 / 2, 1.0, 2.0, 3.0)  # default perturbation factors of a domain's base amount
LOWER, UPPER = (0.0, 0.0, 1e-3, -np.inf), (np.inf, 10.0, 5.0, np.inf)  # bounds of (k, a, b, c)
A_GRID = np.concatenate([[0.0], np.geomspace(1e-3, 10.0, 19)])  # start grid of the offset a
B_GRID = np.geomspace(1e-3, 5.0, 24)  # and of the exponent b


def response(x: np.ndarray, k: float, a: float, b: float, c: float) -> np.ndarray:
    """f(x) = k (x + a)^(-b) + c."""
    return k * np.power(np.asarray(x, dtype=np.float64) + a, -b) + c


@dataclass(frozen=True)
class DomainFit:
    """The fitted response of the objective to one domain's amount (a fraction of the budget)."""

    params: np.ndarray  # (k, a, b, c)
    cov: np.ndarray  # (4, 4) covariance of the estimates
    residual_sd: float  # sd of the residuals (nats/token)
    n: int  # points fitted
    x: np.ndarray  # the amounts fitted (a parametric bootstrap refits at them)

    @property
    def low(self) -> float:
        return float(self.x.min())

    @property
    def high(self) -> float:
        return float(self.x.max())

    @property
    def signal(self) -> float:
        """The fitted drop of the objective from the smallest amount to the largest
        (nats/token): below residual_sd, the domain's optimum is not identified here."""
        return float(response(self.low, *self.params) - response(self.high, *self.params))


def _linear(g: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each row of g (G, n): (k >= 0, c, residual sum of squares) of y ~ k g + c."""
    gm, ym = g.mean(axis=-1, keepdims=True), y.mean()
    var = ((g - gm) ** 2).sum(axis=-1)
    k = np.where(var > 0, ((g - gm) * (y - ym)).sum(axis=-1) / np.where(var > 0, var, 1.0), 0.0)
    k = np.maximum(k, 0.0)  # a loss does not rise with more data
    c = ym - k * gm[..., 0]
    rss = ((y - k[..., None] * g - c[..., None]) ** 2).sum(axis=-1)
    return k, c, rss


def _jacobian(x: np.ndarray, k: float, a: float, b: float) -> np.ndarray:
    """(n, 4) derivatives of `response` in (k, a, b, c)."""
    g = np.power(x + a, -b)
    return np.column_stack([g, -k * b * g / (x + a), -k * np.log(x + a) * g, np.ones_like(x)])


def fit_domain(x: np.ndarray, y: np.ndarray) -> DomainFit:
    """Least-squares fit of `response` to amounts x (fractions of the budget) and objectives y
    (one per cell: every level with every seed). k, a >= 0 and 0 < b <= 5 keep f decreasing and
    convex, as a loss in the amount of data is.

    Variable projection: for given (a, b) the model is linear in (k, c), solved exactly, so
    only (a, b) is searched: a grid over the bounds, then scipy's L-BFGS-B from its best point.
    This finds the global least-squares fit where a gradient method from one start may stall in
    the long valley along which k, a and b trade off, and takes milliseconds (a parametric
    bootstrap refits hundreds of times). The covariance is the usual s^2 (J'J)^-1 at the fit."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(np.unique(x)) < 5:
        raise ValueError(f"a per-domain fit needs at least 5 levels, got {len(np.unique(x))}")
    a_grid, b_grid = np.meshgrid(A_GRID, B_GRID, indexing="ij")
    a_grid, b_grid = a_grid.ravel(), b_grid.ravel()
    _, _, rss = _linear(np.power(x[None] + a_grid[:, None], -b_grid[:, None]), y)
    start = np.array([a_grid[rss.argmin()], b_grid[rss.argmin()]])

    def loss(theta: np.ndarray) -> float:
        return float(_linear(np.power(x + theta[0], -theta[1])[None], y)[2][0])

    bounds = [(LOWER[1], UPPER[1]), (LOWER[2], UPPER[2])]
    found = optimize.minimize(loss, start, method="L-BFGS-B", bounds=bounds)
    a, b = (found.x if found.fun <= rss.min() else start).tolist()
    k, c, _ = (v[0] for v in _linear(np.power(x + a, -b)[None], y))
    params = np.array([k, a, b, c])
    residual = y - response(x, *params)
    dof = max(len(y) - len(params), 1)
    sd = float(np.sqrt(residual @ residual / dof))
    jac = _jacobian(x, k, a, b)
    cov = sd**2 * np.linalg.pinv(jac.T @ jac)
    return DomainFit(params, cov, sd, len(y), x)


def optimum(params: np.ndarray) -> np.ndarray:
    """(K,) amounts x >= 0 summing to 1 that minimise sum_i k_i (x_i + a_i)^(-b_i) for params
    (K, 4) rows (k, a, b, c): where x_i > 0, k_i b_i (x_i + a_i)^(-b_i-1) = lambda."""
    k, a, b = params[:, 0], params[:, 1], params[:, 2]

    gain = np.log(np.maximum(k * b, 1e-300))  # a domain with k = 0 never earns a token

    def amounts(log_lam: float) -> np.ndarray:
        return np.maximum(np.exp((gain - log_lam) / (b + 1.0)) - a, 0.0)

    # sum of amounts falls from +inf to 0 as lambda rises: bracket log(lambda), then solve
    low, high = -50.0, 50.0
    while amounts(low).sum() < 1.0:
        low -= 50.0
    while amounts(high).sum() > 1.0:
        high += 50.0
    root = optimize.brentq(lambda t: amounts(t).sum() - 1.0, low, high, xtol=1e-12)
    x = amounts(root)
    return x / x.sum()


def seed_optimum(fits: list[DomainFit], seeds: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """(K,) the optimum of one seed's cells: per domain, its amounts and objectives `seeds[i]`
    refitted for k >= 0 and c alone at the pooled fit's (a, b) (the curve's shape from every
    seed, its depth and height from this one: a seed's five levels would leave one residual for
    all four), every domain jointly, as the pooled optimum is."""
    params = []
    for fit, (x, y) in zip(fits, seeds, strict=True):
        _, a, b, _ = fit.params
        k, c, _ = (v[0] for v in _linear(np.power(np.asarray(x, float) + a, -b)[None], y))
        params.append([k, a, b, c])
    return optimum(np.array(params))


def interval(draws: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Elementwise (low, high) quantiles of draws along axis 0."""
    tail = (1.0 - level) / 2.0
    return np.quantile(draws, tail, axis=0), np.quantile(draws, 1.0 - tail, axis=0)


def optimum_delta(fits: list[DomainFit]) -> tuple[np.ndarray, np.ndarray]:
    """(optimum (K,), covariance (K, K)) by the delta method: the optimum's Jacobian in every
    fitted parameter (central differences) times the fits' block-diagonal covariance."""
    params = np.array([f.params for f in fits])
    best = optimum(params)
    jac = np.zeros((len(best), params.size))
    for j in range(params.size):
        step = 1e-5 * max(abs(params.flat[j]), 1e-3)
        up, down = params.copy(), params.copy()
        up.flat[j] += step
        down.flat[j] = max(down.flat[j] - step, 0.0) if j % 4 in (0, 1) else down.flat[j] - step
        jac[:, j] = (optimum(up) - optimum(down)) / (up.flat[j] - down.flat[j])
    cov = np.zeros((params.size, params.size))
    for i, fit in enumerate(fits):
        cov[4 * i : 4 * i + 4, 4 * i : 4 * i + 4] = np.nan_to_num(fit.cov)
    return best, jac @ cov @ jac.T


def degenerate(fit: DomainFit) -> bool:
    """A fit whose a or b sits on a bound, or whose covariance is not finite: its
    linearisation says nothing about the optimum's uncertainty."""
    a, b = fit.params[1], fit.params[2]
    on_bound = (
        a >= UPPER[1] * (1 - 1e-6) or b <= LOWER[2] * (1 + 1e-6) or b >= UPPER[2] * (1 - 1e-6)
    )
    return bool(on_bound or not np.all(np.isfinite(fit.cov)))


def optimum_bootstrap(fits: list[DomainFit], seed: int, draws: int) -> np.ndarray:
    """(draws, K) optima of a parametric bootstrap: every fit's curve plus normal noise of its
    residual sd at the amounts it was fitted to, refitted, and the optimum of the refits
    (replicates whose refit fails are left out). The interval where the delta method cannot be
    used (an optimum on the simplex's edge; a fit whose a or b sits on a bound, where k, a and
    b trade off and the covariance says little). It resamples the optimum itself, so it needs
    no identified parameters; tests/ladder/test_fit.py measures its coverage."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(draws):
        try:
            refits = [
                fit_domain(f.x, response(f.x, *f.params) + rng.normal(0.0, f.residual_sd, f.n))
                for f in fits
            ]
        except (RuntimeError, ValueError):  # curve_fit found no fit: leave the replicate out
            continue
        out.append(optimum(np.array([r.params for r in refits])))
    return np.array(out)
