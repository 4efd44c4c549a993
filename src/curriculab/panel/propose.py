"""The predicted best mixture (per phase) under real constraints, from a chosen regressor.

Candidates are mixtures drawn at random around the natural mixture (Dirichlets whose mean is
the natural mixture, at several concentrations: CONCENTRATIONS) plus every run of the panel;
those that would read a domain more than `max_epochs` times under the token budget are
dropped; each is scored by the predicted metric plus `kl` times its KL divergence from the
natural mixture (olmix's regulariser toward the natural mixture); the proposal is the mean of
the `top` best (RegMix averages its best 100 to smooth the regressor's noise). Its interval:
the spread of the predictions of the K fold models at the proposal (GP: also its own
predictive sd).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from curriculab.panel.regressors import REGRESSORS, fold_fits
from curriculab.panel.table import Panel, PanelError

# Dirichlet concentrations of the candidates, times the number of domains: from sparse mixtures
# (most weights near 0, as in olmix's swarm and at the corners where RegMix's best runs lie) to
# mixtures close to the natural one. One concentration (1) left the best corners unsampled: on
# RegMix's 1M table the proposal was predicted 5.225 against 5.151 with these four.
CONCENTRATIONS = (0.1, 0.3, 1.0, 3.0)


@dataclass(frozen=True)
class Constraints:
    """What the proposal must respect. natural: (D,) the mixture of the available tokens
    (None: uniform); budget_tokens and available_tokens (D,): with max_epochs, a domain's
    weight is at most max_epochs * available / (budget * its phase's share); within_runs: no
    mixture outside the range of weights the runs cover (_inside)."""

    natural: np.ndarray | None = None
    budget_tokens: float | None = None
    available_tokens: np.ndarray | None = None
    max_epochs: float | None = None
    kl: float = 0.0
    within_runs: bool = True  # only mixtures inside the range the runs cover (support)


def _capped(c: Constraints) -> bool:
    """Whether max_epochs caps the domains (it needs the budget and the tokens available)."""
    return all(v is not None for v in (c.max_epochs, c.budget_tokens, c.available_tokens))


def _inside(panel: Panel, mixtures: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """(N,) which mixtures (N, P, D) lie within the runs' range: every (phase, domain) weight
    and every domain's weight over the whole run between the runs' least and greatest. Outside
    it a regressor extrapolates (trees flatly, the law exponentially); in the study's own
    panel, a mixture richer in D1 than any cell is not a choice of order but of more D1."""
    eps = 1e-9
    low, high = panel.weights.min(axis=0) - eps, panel.weights.max(axis=0) + eps
    inside = ((mixtures >= low) & (mixtures <= high)).all(axis=(1, 2))
    overall = np.einsum("p,npd->nd", shares, mixtures)
    runs = panel.overall()
    return inside & ((overall >= runs.min(0) - eps) & (overall <= runs.max(0) + eps)).all(axis=1)


def candidates(
    panel: Panel, c: Constraints, shares: np.ndarray, samples: int, seed: int
) -> np.ndarray:
    """(N, P, D) mixtures to score: Dirichlet draws around the natural mixture, an equal number
    at each of CONCENTRATIONS, and the runs; those outside the runs' range dropped
    (within_runs), and those over an epoch cap."""
    d = len(panel.domains)
    natural = np.full(d, 1.0 / d) if c.natural is None else np.asarray(c.natural, float)
    rng = np.random.default_rng(seed)
    counts = np.diff(np.linspace(0, samples, len(CONCENTRATIONS) + 1).astype(int))
    draws = np.concatenate([
        rng.dirichlet(np.maximum(natural * d * scale, 1e-3), size=(count, panel.phases))
        for scale, count in zip(CONCENTRATIONS, counts, strict=True)
    ])  # fmt: skip
    flat = np.concatenate([draws, panel.weights], axis=0)
    if c.within_runs:
        flat = flat[_inside(panel, flat, shares)]
    if _capped(c):  # a domain's tokens over the phases, against its epochs
        used = np.einsum("p,npd->nd", shares, flat) * c.budget_tokens
        flat = flat[(used <= c.max_epochs * np.asarray(c.available_tokens)[None, :]).all(axis=1)]
    if not len(flat):
        raise PanelError(
            "panel proposal: no mixture keeps every domain within max_epochs under the budget; "
            "raise max_epochs or lower the budget"
        )
    return flat


@dataclass(frozen=True)
class Scored:
    """The candidates of one panel and metric (Constraints kept), and a regressor fitted on
    every run with its prediction at each: what propose and next_runs both choose from."""

    shares: np.ndarray  # (P,) the runs' mean phase shares
    mixtures: np.ndarray  # (N, P, D)
    features: np.ndarray  # (N, F)
    model: Any
    mean: np.ndarray  # (N,) the model's prediction


def score(
    panel: Panel, metric: str, regressor: str, constraints: Constraints | None = None,
    samples: int = 20_000, seed: int = 0, model: Any = None,
) -> Scored:  # fmt: skip
    """Draw the candidates and predict them with `model` (fitted on every run here when not
    given)."""
    c = constraints or Constraints()
    shares = panel.shares.mean(axis=0)
    mixtures = candidates(panel, c, shares, samples, seed)
    feats = _features(panel, mixtures, shares)
    if model is None:
        model = REGRESSORS[regressor](seed).fit(panel.features(), panel.metrics[metric])
    return Scored(shares, mixtures, feats, model, model.predict(feats))


def _by_phase(panel: Panel, mixture: np.ndarray) -> dict[str, dict[str, float]]:
    """A (P, D) mixture as {phase: {domain: weight}}."""
    return {
        str(p): dict(zip(panel.domains, map(float, mixture[p]), strict=True))
        for p in range(panel.phases)
    }


def _features(panel: Panel, mixtures: np.ndarray, shares: np.ndarray) -> np.ndarray:
    flat = mixtures.reshape(len(mixtures), -1)
    if panel.features().shape[1] > flat.shape[1]:  # the shares are features too
        flat = np.concatenate([flat, np.broadcast_to(shares, (len(flat), len(shares)))], axis=1)
    return flat


def propose(
    panel: Panel, metric: str, regressor: str, constraints: Constraints | None = None,
    folds: int = 5, samples: int = 20_000, top: int = 100, seed: int = 0,
    model: Any = None, fold_models: list[Any] | None = None, scored: Scored | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The proposed mixture per phase (lower metric is better), its predicted metric and the
    interval of the fold models' predictions there. `model` (fitted on every run),
    `fold_models` (regressors.fold_fits' with the same folds and seed) and `scored` (score's,
    with the same constraints, samples and seed) are made here when not given."""
    c = constraints or Constraints()
    x, y = panel.features(), panel.metrics[metric]
    scored = scored or score(panel, metric, regressor, c, samples, seed, model)
    shares, mixtures, model = scored.shares, scored.mixtures, scored.model
    objective = scored.mean
    if c.kl:
        d = len(panel.domains)
        natural = np.full(d, 1.0 / d) if c.natural is None else np.asarray(c.natural, float)
        overall = np.clip(np.einsum("p,npd->nd", shares, mixtures), 1e-12, None)
        objective = objective + c.kl * (overall * np.log(overall / natural)).sum(axis=1)
    best = np.argsort(objective, kind="stable")[:top]
    mixture = mixtures[best].mean(axis=0)  # (P, D), each phase still sums to 1
    point = _features(panel, mixture[None], shares)
    if fold_models is None:
        fold_models = fold_fits(regressor, x, y, folds, seed)[1]
    spread = np.array([m.predict(point)[0] for m in fold_models])
    result = {
        "metric": metric,
        "regressor": regressor,
        "mixture": _by_phase(panel, mixture),
        "phase_shares": [float(s) for s in shares],
        "predicted": float(model.predict(point)[0]),
        "interval": [float(spread.min()), float(spread.max())],
        "candidates": len(mixtures),
        "top": len(best),
        "best_run": panel.runs[int(np.argmin(y))],
        "best_run_metric": float(y.min()),
    }
    if hasattr(model, "predict_sd"):
        result["sd"] = float(model.predict_sd(point)[0])
    return result


def next_runs(
    panel: Panel, metric: str, regressor: str, constraints: Constraints | None = None,
    count: int = 4, samples: int = 20_000, seed: int = 0, spacing: float = 0.05,
    model: Any = None, fold_models: list[Any] | None = None, folds: int = 5,
    scored: Scored | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """The next `count` runs worth training, as the design loop chooses points, with the chosen
    regressor as the surrogate: its prediction (`model`, fitted on every run) is the mean, and
    its sd the GP's own or, for a regressor without one, the spread (sd) of its K fold models'
    predictions (`fold_models`: fold_fits' with the same folds and seed); they and `scored`
    are made here when not given. The candidates are scored by the lower confidence bound,
    mean - 2 sd, and the lowest are taken one by one, each at least `spacing` (Euclidean, in
    weights) from the runs (so never a run itself) and from those taken before."""
    x, y = panel.features(), panel.metrics[metric]
    scored = scored or score(panel, metric, regressor, constraints, samples, seed, model)
    feats, mean = scored.features, scored.mean
    if hasattr(scored.model, "predict_sd"):
        sd = scored.model.predict_sd(feats)
    else:
        if fold_models is None:
            fold_models = fold_fits(regressor, x, y, folds, seed)[1]
        sd = np.std([m.predict(feats) for m in fold_models], axis=0, ddof=1)
    taken: list[int] = []
    near = list(x)
    for i in np.argsort(mean - 2 * sd, kind="stable"):
        if len(taken) == count:
            break
        if min(np.linalg.norm(feats[i] - f) for f in near) >= spacing:
            taken.append(int(i))
            near.append(feats[i])
    return [
        {"mixture": _by_phase(panel, scored.mixtures[i]), "mean": float(mean[i]),
         "sd": float(sd[i])}
        for i in taken
    ]  # fmt: skip
