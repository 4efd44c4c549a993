"""The mixture optimum one scale up: the two rules, censored optima and intervals that are honest
about the law and about the seeds (docs/stages/ladder.md).

Every domain's optimal amount N*_i(B) = B x*_i(B) is taken to be log-linear in the budget B.
AutoScale's rule (arXiv 2407.20177) extrapolates the line through the last two scales (on a
geometric ladder N(3) = N(2)^2 / N(1)); the all-scales rule fits the line to every scale by least
squares. Either way the predicted log amount of a domain is a fixed linear combination c'z of its
log amounts z at the scales (`coefficients`), and the amounts are normalised to weights.

Censoring. A fitted optimum outside the amounts its domain's fit saw (its lowest to its highest
level) is the power law's extrapolation, and at a corner of the simplex (weight 0) its log is
not defined. The all-scales rule takes such an optimum as censored at the bound it passed (the
truth lies at or beyond it) and enters the bound into the line; the tables count how many scales
were censored. AutoScale's rule is kept as published: it uses the optima as fitted, a weight
below FLOOR taken as FLOOR before its log, and the tables say where it did.

Intervals (`seed_cov`, `lack_of_fit`, `prediction_draws`). Two sources of error, each estimated
from what varies:
- the seeds. Every seed shares one initialisation and one D1 subsample across all its cells (at
  every scale), and the base run sits in every domain's fit, so a seed's quirks move every
  domain's optimum at every scale together. Each seed's own optimum at every scale (its own
  heights k, c at the pooled fit's a, b, all domains jointly, `ladder.fit.seed_optimum`) gives
  the seeds' covariance of the pooled log amounts across scales, Sigma = Cov_seeds / n (its
  (n - 1)(K - 1) degrees of freedom); the prediction's seed variance is c' Sigma c. A seed
  bootstrap would not do with 2 to 4 seeds: it has at most 35 distinct resamples and shrinks the
  variance by (n - 1) / n.
- the law. The line's residuals beyond what the seeds explain estimate its lack of fit:
  tau^2 = max(0, (RSS - tr((I - H) Sigma)) / (S - 2)) (method of moments; H the line's hat
  matrix; (S - 2)(K - 1) degrees of freedom), which adds tau^2 (1 + c'c): the line's departure
  at every scale it uses and the target's own. It is estimated once, from the censored optima,
  for both rules (AutoScale's floored corner is no measurement of the law). With two scales
  (S - 2 = 0) it cannot be estimated and the interval takes the law as exact: `law_df` says so.
Both are pooled over domains in centred log-ratio coordinates (a common shift of every domain's
log amount does not change the weights): with S - 2 and n - 1 this small, a K x K covariance per
source would rest on one or two degrees of freedom. t draws of the summed variance, on the
smaller of the two degrees of freedom, go through the normalisation; their quantiles give the
interval (tests/ladder/test_coverage.py measures its coverage).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FLOOR = 1e-3  # AutoScale's rule: the smallest weight it takes the log of (flagged where used)
RULES = ("autoscale", "all")


def coefficients(tokens: np.ndarray, target: float, rule: str) -> np.ndarray:
    """(S,) c such that a rule's log amount at `target` is c'z for log amounts z at `tokens`:
    the least-squares line through every scale ("all") or the line through the last two
    ("autoscale")."""
    t = np.log(np.asarray(tokens, dtype=np.float64))
    c = np.zeros(len(t))
    if rule == "autoscale":
        chosen = slice(len(t) - 2, len(t))
    elif rule == "all":
        chosen = slice(0, len(t))
    else:
        raise ValueError(f"unknown rule {rule!r}; expected 'autoscale' or 'all'")
    x = np.column_stack([np.ones_like(t[chosen]), t[chosen]])
    c[chosen] = np.array([1.0, np.log(target)]) @ np.linalg.pinv(x)
    return c


def predict(
    budgets: np.ndarray, weights: np.ndarray, target: float, rule: str = "all"
) -> np.ndarray:
    """Optimal weights (..., K) at budget `target` from the optimal weights (..., S, K) at
    `budgets` (S,), each domain's amount log-linear in B by `rule`; a weight below FLOOR is
    taken as FLOOR (AutoScale's rule; the all-scales rule gets censored optima, never 0).
    Leading axes are carried through."""
    c = coefficients(budgets, target, rule)
    log_n = np.log(np.maximum(weights, FLOOR)) + np.log(np.asarray(budgets, float))[:, None]
    return softmax(np.einsum("s,...sk->...k", c, log_n))


def softmax(log_n: np.ndarray) -> np.ndarray:
    """Weights (..., K) from log amounts (..., K)."""
    n = np.exp(log_n - log_n.max(axis=-1, keepdims=True))
    return n / n.sum(axis=-1, keepdims=True)


def rule_inputs(weights: np.ndarray, low: np.ndarray, high: np.ndarray, rule: str) -> np.ndarray:
    """The optima as a rule takes them: the all-scales rule censors one outside its domain's
    measured amounts [low, high] at the bound it passed; AutoScale's keeps it. Shapes
    broadcast (weights (S, K) with low (S, K); (S, n, K) with (S, 1, K))."""
    return np.clip(weights, low, high) if rule == "all" else np.asarray(weights)


def outside(weights: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """-1 where an optimum lies below its domain's measured amounts, +1 above, else 0."""
    return np.where(weights < low - 1e-9, -1, np.where(weights > high + 1e-9, 1, 0))


def clr(values: np.ndarray) -> np.ndarray:
    """Centred log-ratio coordinates of log amounts (..., K): the common shift removed."""
    return values - values.mean(axis=-1, keepdims=True)


@dataclass(frozen=True)
class Spread:
    """The variance of a rule's predicted log amounts (per domain, pooled over domains)."""

    seed_var: float  # c' Sigma c: the seeds' part
    seed_df: int  # (n - 1)(K - 1)
    law_var: float  # tau^2 (1 + c'c): the lack of fit's part
    law_df: int  # (S - 2)(K - 1); 0: not estimable (two scales), the law taken as exact
    tau: float  # the lack of fit's sd (log amount)


def seed_cov(seed_log_n: np.ndarray) -> tuple[np.ndarray, int]:
    """(Sigma (S, S), degrees of freedom): the seeds' covariance of the pooled log amounts
    across scales, from every seed's own (S, n, K), pooled over domains."""
    _, n_seeds, k = seed_log_n.shape
    dev = clr(seed_log_n - seed_log_n.mean(axis=1, keepdims=True))  # (S, n, K)
    df = (n_seeds - 1) * (k - 1)
    return np.einsum("snk,tnk->st", dev, dev) / max(df, 1) / n_seeds, df


def lack_of_fit(tokens: np.ndarray, log_n: np.ndarray, sigma: np.ndarray) -> tuple[float, int]:
    """(tau^2, degrees of freedom): the variance of the pooled log amounts (S, K) about their
    least-squares line in log B beyond what the seeds' covariance `sigma` explains (0 with two
    scales, where no residual is left)."""
    t = np.log(np.asarray(tokens, dtype=np.float64))
    n_scales, k = log_n.shape
    x = np.column_stack([np.ones_like(t), t])
    hat = x @ np.linalg.pinv(x)
    df = (n_scales - 2) * (k - 1)
    if df <= 0:
        return 0.0, 0
    rss = float((clr(log_n - hat @ log_n) ** 2).sum()) / (k - 1)
    explained = float(np.trace((np.eye(n_scales) - hat) @ sigma))
    return max(0.0, (rss - explained) / (n_scales - 2)), df


def prediction_draws(
    point: np.ndarray, part: Spread, draws: int, rng: np.random.Generator
) -> np.ndarray:
    """(draws, K) weights: the predicted log amounts `point` (K,) plus t draws (each domain's,
    independent before normalisation) of the two parts' summed variance, normalised. The t
    takes the smaller of the parts' degrees of freedom: Satterthwaite's is liberal with two or
    four of each (0.91 to 0.93 for a nominal 0.95 in simulations like
    tests/ladder/test_coverage.py's, where the smaller gives 0.94 to 0.97)."""
    parts = [(v, df) for v, df in ((part.seed_var, part.seed_df), (part.law_var, part.law_df))
             if v > 0 and df > 0]  # fmt: skip
    out = np.broadcast_to(point, (draws, len(point))).copy()
    if parts:
        var, df = sum(v for v, _ in parts), min(d for _, d in parts)
        scale = np.sqrt(rng.chisquare(df, (draws, 1)) / df)
        out += np.sqrt(var) * rng.standard_normal(out.shape) / scale
    return softmax(out)
