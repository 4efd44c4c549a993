"""Regressors from a run's mixture (its panel features) to one metric, and their choice by
how well they rank runs they have not seen.

- `loglinear`: the data-mixing law of Ye et al. (2024, "Data Mixing Laws"), y = c + k exp(t . x),
  fitted by scipy's least_squares from several starts;
- `lightgbm`: gradient-boosted trees (the maintained `lightgbm` package), RegMix's regressor;
- `gp`: a Gaussian process (scikit-learn; Matern 5/2 with one length scale per feature and a
  white-noise term, the design loop's surrogate family), the only one with its own predictive sd;
- `linear`: ordinary least squares, the floor every other must beat.

`cross_validate` fits each on K-1 folds and predicts the K-th (scikit-learn's KFold, shuffled by
a seed), so every run gets an out-of-fold prediction; `rank_scores` says how well those rank
the runs (Spearman) and what choosing the predicted best would have cost (regret@1: the true
metric of the run predicted best minus the true best; lower metrics are better).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize, stats

from curriculab.panel.table import PanelError

LGBM_PARAMS = {  # our LightGBM: RegMix's learning rate, a fixed length, seeded and single-threaded
    "n_estimators": 500,
    "learning_rate": 0.02,
    "num_leaves": 15,
    "min_child_samples": 5,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "deterministic": True,
    "force_row_wise": True,
    "n_jobs": 1,
    "verbosity": -1,
}


class LogLinear:
    """y = c + k exp(t . x) over the features x (Data Mixing Laws, per metric)."""

    name = "loglinear"

    def __init__(self, seed: int = 0, starts: int = 8) -> None:
        self.seed, self.starts = seed, starts

    @staticmethod
    def _curve(params: np.ndarray, x: np.ndarray) -> np.ndarray:
        return params[0] + np.exp(params[1] + np.clip(x @ params[2:], -50, 50))

    @staticmethod
    def _jac(params: np.ndarray, x: np.ndarray) -> np.ndarray:
        """(R, 2 + F) derivatives of the curve by c, log k and t."""
        grow = np.exp(params[1] + np.clip(x @ params[2:], -50, 50))[:, None]
        return np.concatenate([np.ones_like(grow), grow, grow * x], axis=1)

    def fit(self, x: np.ndarray, y: np.ndarray) -> LogLinear:
        rng = np.random.default_rng(self.seed)
        best = None
        spread = max(float(np.ptp(y)), 1e-6)
        for start in range(self.starts):
            c0 = float(y.min()) - spread * (0.5 if start == 0 else rng.uniform(0.05, 2.0))
            t0 = np.zeros(x.shape[1]) if start == 0 else rng.normal(0, 1.0, x.shape[1])
            k0 = np.log(max(float(np.mean(y)) - c0, 1e-6))
            with np.errstate(over="ignore"):  # a trial step may overflow; trf steps back
                fit = optimize.least_squares(
                    lambda p: self._curve(p, x) - y, np.r_[c0, k0, t0],
                    jac=lambda p: self._jac(p, x), method="trf", max_nfev=500,
                )  # fmt: skip
            if best is None or fit.cost < best.cost:
                best = fit
        self.params = best.x
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self._curve(self.params, x)


class LightGBM:
    """Gradient-boosted trees (lightgbm.LGBMRegressor, LGBM_PARAMS unless given)."""

    name = "lightgbm"

    def __init__(self, seed: int = 0, **params: Any) -> None:
        self.seed, self.params = seed, {**LGBM_PARAMS, **params}

    def fit(self, x: np.ndarray, y: np.ndarray) -> LightGBM:
        import lightgbm

        self.model = lightgbm.LGBMRegressor(random_state=self.seed, **self.params).fit(x, y)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.model.predict(x)


class GP:
    """A Gaussian process over the features (in [0, 1]); `predict_sd` gives its sd."""

    name = "gp"

    def __init__(self, seed: int = 0, restarts: int = 1) -> None:
        self.seed, self.restarts = seed, restarts

    def fit(self, x: np.ndarray, y: np.ndarray) -> GP:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        kernel = ConstantKernel(1.0, (1e-3, 1e3)) * Matern(
            np.full(x.shape[1], 0.5), (0.02, 100.0), nu=2.5
        ) + WhiteKernel(1e-2, (1e-6, 1.0))
        self.model = GaussianProcessRegressor(
            kernel, normalize_y=True, n_restarts_optimizer=self.restarts, random_state=self.seed
        )
        with warnings.catch_warnings():  # a length scale at its bound is a fit, not a failure
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.model.fit(x, y)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.model.predict(x)

    def predict_sd(self, x: np.ndarray) -> np.ndarray:
        return self.model.predict(x, return_std=True)[1]


class Linear:
    """Ordinary least squares with an intercept (scikit-learn)."""

    name = "linear"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fit(self, x: np.ndarray, y: np.ndarray) -> Linear:
        from sklearn.linear_model import LinearRegression

        self.model = LinearRegression().fit(x, y)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.model.predict(x)


REGRESSORS: dict[str, Callable[[int], Any]] = {
    "loglinear": LogLinear,
    "lightgbm": LightGBM,
    "gp": GP,
    "linear": Linear,
}


def rank_scores(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """Spearman of predicted against actual, and regret@1 (lower is better)."""
    rho = stats.spearmanr(predicted, actual).statistic
    return {
        "spearman": float(rho),
        "regret_at_1": float(actual[int(np.argmin(predicted))] - actual.min()),
    }


def fold_fits(
    name: str, x: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0
) -> tuple[np.ndarray, list[Any]]:
    """((R,) out-of-fold predictions of regressor `name`, its K fold models) (K-fold,
    shuffled by `seed`)."""
    from sklearn.model_selection import KFold

    if len(y) < folds:
        raise PanelError(f"panel: {len(y)} runs are fewer than the {folds} folds of the choice")
    out, models = np.empty(len(y)), []
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(x):
        models.append(REGRESSORS[name](seed).fit(x[train], y[train]))
        out[test] = models[-1].predict(x[test])
    return out, models


def cross_validate(
    name: str, x: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0
) -> np.ndarray:
    """(R,) out-of-fold predictions of regressor `name` (`fold_fits`)."""
    return fold_fits(name, x, y, folds, seed)[0]


@dataclass(frozen=True)
class Choice:
    """Each regressor's out-of-fold scores, predictions and fold models; `best`: the highest
    Spearman."""

    scores: dict[str, dict[str, float]]
    predictions: dict[str, np.ndarray]
    best: str
    fold_models: dict[str, list[Any]]


def choose(
    x: np.ndarray, y: np.ndarray, names: tuple[str, ...] = tuple(REGRESSORS), folds: int = 5,
    seed: int = 0,
) -> Choice:  # fmt: skip
    """Cross-validate every regressor in `names` and pick the best out-of-fold Spearman."""
    fits = {name: fold_fits(name, x, y, folds, seed) for name in names}
    predictions = {name: oof for name, (oof, _) in fits.items()}
    scores = {name: rank_scores(p, y) for name, p in predictions.items()}
    best = max(names, key=lambda n: (scores[n]["spearman"], -scores[n]["regret_at_1"]))
    return Choice(scores, predictions, best, {name: models for name, (_, models) in fits.items()})
