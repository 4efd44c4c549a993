"""A surrogate of the study's objective over schedule parameters, and the next points to run.

The design loop (docs/stages/design.md) treats every finished cell as a noisy measurement of the
objective at a point x of a box of schedule parameters (a window, a strength, a share). It fits
a Gaussian process (scikit-learn: a Matern 5/2 kernel with one length scale per parameter, a
white-noise term for seed-to-seed variation, the targets normalised) and proposes a batch:

1. the predicted optimum: the point of lowest posterior mean among a scrambled Sobol set;
2. then, one at a time, the point of highest expected improvement over the best posterior mean
   so far, each followed by a "kriging believer" update (the GP told that the point came out at
   its own prediction), so the batch spreads out instead of piling onto one maximum.

Expected improvement asks how much lower the objective itself (the latent function f) may lie
at a point, so it takes f's posterior sd (latent_predict): the white-noise term and the seeds'
known noise are the scatter of a measurement around f, not uncertainty about f, and would make
a point measured many times look as promising as an unexplored one.

Points are minimised (the objective is a loss). Everything is seeded, so the same observations
and seed give the same proposals; a point already measured (or proposed) is never proposed
again (`exclude`), and proposals keep a minimum distance from it.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.stats import qmc
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

from curriculab.design.plan import DesignError

# allowed(points (N, D) in parameter values) -> (N,) bool: which points can be run
Allowed = Callable[[np.ndarray], np.ndarray]
CANDIDATES = 1024  # Sobol points over the box that proposals are chosen from (a power of 2)


@dataclass(frozen=True)
class Box:
    """The search space: one [low, high] interval per schedule parameter."""

    names: tuple[str, ...]
    low: np.ndarray  # (D,)
    high: np.ndarray  # (D,)

    @classmethod
    def of(cls, bounds: dict[str, tuple[float, float]]) -> Box:
        names = tuple(bounds)
        low = np.array([bounds[n][0] for n in names], dtype=np.float64)
        high = np.array([bounds[n][1] for n in names], dtype=np.float64)
        if np.any(high <= low):
            raise ValueError(f"design box: every parameter needs low < high, got {bounds}")
        return cls(names, low, high)

    def unit(self, x: np.ndarray) -> np.ndarray:
        """(N, D) points mapped to the unit cube (the GP's coordinates)."""
        return (np.asarray(x, dtype=np.float64) - self.low) / (self.high - self.low)

    def scale(self, u: np.ndarray) -> np.ndarray:
        """(N, D) unit-cube points mapped back to parameter values."""
        return self.low + np.asarray(u) * (self.high - self.low)


def _alpha(y: np.ndarray, noise: float | None) -> float:
    """The measured noise variance of y in the GP's normalised units (sklearn's default
    jitter without one)."""
    if not noise:
        return 1e-10
    return noise / max(float(np.var(y)), 1e-300)


def fit_surrogate(
    box: Box, x: np.ndarray, y: np.ndarray, seed: int = 0, noise: float | None = None
) -> GaussianProcessRegressor:
    """A GP of y (N,) at points x (N, D), in unit-cube coordinates; deterministic for a seed.
    noise: the variance of each y that is known from elsewhere (the seeds: design.loop), put
    on the diagonal; the white-noise term then only has to take what the kernel cannot fit."""
    dims = len(box.names)
    kernel = ConstantKernel(1.0, (1e-3, 1e3)) * Matern(
        length_scale=np.full(dims, 0.3), length_scale_bounds=(0.02, 10.0), nu=2.5
    ) + WhiteKernel(1e-2, (1e-6, 1.0))
    y = np.asarray(y, dtype=np.float64)
    gp = GaussianProcessRegressor(
        kernel,
        alpha=_alpha(y, noise),
        normalize_y=True,
        n_restarts_optimizer=4,
        random_state=seed,
    )
    with warnings.catch_warnings():  # a length scale at its bound is a fit, not a failure
        warnings.simplefilter("ignore", ConvergenceWarning)
        return gp.fit(box.unit(x), y)


def candidates(box: Box, seed: int) -> np.ndarray:
    """(CANDIDATES, D) scrambled Sobol points in the unit cube, the same for the same seed."""
    return qmc.Sobol(len(box.names), scramble=True, seed=seed).random(CANDIDATES)


def feasible_pool(box: Box, seed: int, allowed: Allowed | None) -> np.ndarray:
    """The Sobol candidates that `allowed` keeps (all without it); an error when none is."""
    pool = candidates(box, seed)
    if allowed is not None:
        pool = pool[allowed(box.scale(pool))]
    if not len(pool):
        raise DesignError(
            f"design: no point of the box {list(box.names)} can be built at the design's ratio "
            "and budget; widen the box or change the design's ratio"
        )
    return pool


def predict(
    box: Box,
    x: np.ndarray,
    y: np.ndarray,
    points: np.ndarray,
    seed: int = 0,
    noise: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and predictive sd of the fit to (x, y) at `points` (parameter values):
    what a new measurement there should give, its noise (the white-noise term and `noise`)
    included."""
    gp = fit_surrogate(box, x, y, seed, noise)
    mean, sd = gp.predict(box.unit(points), return_std=True)
    return mean, np.sqrt(sd**2 + (noise or 0.0))


def latent_predict(gp: GaussianProcessRegressor, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and sd of the latent objective f (no measurement noise) at unit-cube
    points u (N, D), in y's units. The fitted kernel is signal + white noise; the white term
    adds only to the prior variance at a point (its cross-covariances are zero), so f's
    posterior is the same fit predicted with the signal kernel alone: the training solve
    (L_, alpha_, the noise on its diagonal) stands, and only that prior variance drops."""
    latent = copy.copy(gp)  # shallow: shares the fit, changes only which kernel predicts
    latent.kernel_ = gp.kernel_.k1
    return latent.predict(u, return_std=True)


def expected_improvement(mean: np.ndarray, sd: np.ndarray, best: float) -> np.ndarray:
    """E[max(best - f, 0)] for f ~ N(mean, sd^2), elementwise (minimisation)."""
    sd = np.maximum(sd, 1e-12)
    z = (best - mean) / sd
    return (best - mean) * stats.norm.cdf(z) + sd * stats.norm.pdf(z)


def propose(
    box: Box,
    x: np.ndarray,
    y: np.ndarray,
    n: int,
    seed: int = 0,
    exclude: Sequence[Sequence[float]] = (),
    min_distance: float = 0.02,
    allowed: Allowed | None = None,
    noise: float | None = None,
) -> np.ndarray:
    """(n, D) next points: the predicted optimum, then n - 1 by expected improvement with
    kriging-believer updates. Points within `min_distance` (unit-cube units) of a measured,
    excluded or already chosen point are skipped, and so are those `allowed` rejects.
    noise: the known noise variance of y (fit_surrogate)."""
    gp = fit_surrogate(box, x, y, seed, noise)
    pool = feasible_pool(box, seed, allowed)
    taken = [box.unit(np.asarray(p, dtype=np.float64)) for p in [*x, *exclude]]
    chosen: list[np.ndarray] = []
    xs, ys = box.unit(x), np.asarray(y, dtype=np.float64)
    for i in range(n):
        mean, sd = latent_predict(gp, pool)  # f's sd: noise is not room for improvement
        score = -mean if i == 0 else expected_improvement(mean, sd, float(mean.min()))
        far = np.ones(len(pool), dtype=bool)
        for p in [*taken, *chosen]:
            far &= np.linalg.norm(pool - p, axis=1) > min_distance
        if not far.any():
            break
        pick = int(np.flatnonzero(far)[np.argmax(score[far])])
        chosen.append(pool[pick])
        xs, ys = np.vstack([xs, pool[pick]]), np.append(ys, mean[pick])  # believe the mean
        gp = GaussianProcessRegressor(
            gp.kernel_, alpha=_alpha(ys, noise), normalize_y=True, optimizer=None
        ).fit(xs, ys)
    return box.scale(np.array(chosen))


def recommend(
    box: Box, x: np.ndarray, y: np.ndarray, seed: int = 0, allowed: Allowed | None = None
) -> tuple[np.ndarray, float]:
    """The point of lowest posterior mean among the measured points and the Sobol set, and
    that predicted objective: the curriculum the loop recommends."""
    gp = fit_surrogate(box, x, y, seed)
    pool = np.vstack([box.unit(x), feasible_pool(box, seed, allowed)])
    mean = gp.predict(pool)
    best = int(np.argmin(mean))
    return box.scale(pool[best]), float(mean[best])
