"""Selection methods: a score per pool document, lower = chosen first, and the chosen set.

- `random`: a seeded uniform draw per document (the control), drawn anew for every training
  seed (selection.plan): `draw` is that seed.
- `similarity`: 1 - cosine similarity to the target's embedding centroid: documents that
  *look like* the target on average.
- `ot` (GOT-D, Kang et al., ICLR 2024): entropic optimal transport (POT's Sinkhorn, squared
  Euclidean cost between unit vectors, so costs lie in [0, 4]) between the pool and the target;
  the pool-side dual potential f_i is the gradient of the transport cost with respect to
  document i's mass, calibrated as in LAVA (f_i minus the mean of the others). The most
  negative are the documents whose extra weight moves the pool's distribution most toward the
  target's: what the training data lacks, not merely what resembles the target.

Memory is bounded: the target is a seeded sample of at most `target_points` documents (GOT-D's
code uses 1,000), and the pool is split into seeded random batches so that no cost matrix
exceeds `max_matrix_mb` (POT holds the cost, the kernel and the plan, each that size, plus
temporaries: bench/bench_selection.py measured a 2.5 GB peak for the whole process at the default
512 MiB bound with a 400 MB matrix, 1.2 GB at 128 MiB). Every batch is a random sample of the
pool solved against the same target sample; calibration removes each batch's arbitrary
constant, so scores of different batches compare.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

METHODS = ("random", "similarity", "ot")


@dataclass(frozen=True)
class OTSpec:
    """The `ot` method's settings (`selection.ot`)."""

    epsilon: float = 0.1  # entropic regularisation, in cost units (GOT-D's code: 0.1)
    target_points: int = 1000  # target documents in the transport problem (a seeded sample)
    max_matrix_mb: int = 512  # largest cost matrix (float32), MiB; larger pools are batched
    max_iter: int = 2000  # Sinkhorn iterations at most per batch
    tol: float = 1e-6  # stop when the marginal error falls below this

    @classmethod
    def of(cls, raw: dict[str, Any] | None) -> OTSpec:
        return cls(**(raw or {}))


def random_scores(n: int, seed: int, draw: int | None = None) -> np.ndarray:
    """(n,) seeded uniform draws: a random order of the pool, its own for every `draw` (the
    training seed it is drawn for)."""
    key = [seed, 2] if draw is None else [seed, 2, draw]
    return np.random.default_rng(key).random(n)


def similarity_scores(pool: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(n,) 1 - cosine similarity of each pool vector to the target's mean direction."""
    centroid = target.mean(axis=0)
    centroid /= max(float(np.linalg.norm(centroid)), 1e-12)
    return 1.0 - pool @ centroid


def calibrate(potential: np.ndarray) -> np.ndarray:
    """LAVA's calibrated gradient: each value minus the mean of all the others."""
    n = len(potential)
    return potential - (potential.sum() - potential) / max(n - 1, 1)


def _pool_potential(pool: np.ndarray, target: np.ndarray, spec: OTSpec) -> tuple[np.ndarray, dict]:
    """(n,) pool-side dual potential of entropic OT between uniform measures; solver facts."""
    import ot

    cost = ot.dist(pool, target)  # (n, m) squared Euclidean, float32
    a = np.full(len(pool), 1.0 / len(pool), dtype=cost.dtype)
    b = np.full(len(target), 1.0 / len(target), dtype=cost.dtype)
    kwargs = {"numItermax": spec.max_iter, "stopThr": spec.tol, "log": True}
    _, log = ot.sinkhorn(a, b, cost, spec.epsilon, method="sinkhorn", **kwargs)
    with np.errstate(divide="ignore"):
        potential = spec.epsilon * np.log(log["u"])
    solver = "sinkhorn"
    if not np.all(np.isfinite(potential)):  # under- or overflow in the kernel: log domain
        _, log = ot.sinkhorn(a, b, cost, spec.epsilon, method="sinkhorn_log", **kwargs)
        potential, solver = spec.epsilon * log["log_u"], "sinkhorn_log"
    err = float(log["err"][-1]) if log.get("err") else float("nan")
    return np.asarray(potential, np.float64), {
        "iterations": int(log.get("niter", 0)),
        "error": err,
        "solver": solver,
    }


def ot_scores(
    pool: np.ndarray, target: np.ndarray, spec: OTSpec, seed: int
) -> tuple[np.ndarray, dict[str, Any]]:
    """(n,) calibrated pool-side potentials (lower: moves the pool toward the target most),
    and what the solve did (batches, target points, iterations, convergence)."""
    rng = np.random.default_rng([seed, 3])
    m = min(len(target), spec.target_points)
    target = target[np.sort(rng.permutation(len(target))[:m])]
    rows = max(2, (spec.max_matrix_mb << 20) // (4 * m))
    n_batches = -(-len(pool) // rows)
    batches = np.array_split(rng.permutation(len(pool)), n_batches)
    scores = np.empty(len(pool))
    facts: list[dict] = []
    start = time.perf_counter()
    for i, batch in enumerate(batches):
        potential, info = _pool_potential(pool[batch], target, spec)
        scores[batch] = calibrate(potential)
        facts.append(info)
        elapsed = time.perf_counter() - start
        print(
            f"ot batch {i + 1}/{n_batches}: {len(batch)} x {m}, {info['iterations']} "
            f"iterations, marginal error {info['error']:.1e}, {elapsed:.1f} s, "
            f"ETA {elapsed / (i + 1) * (n_batches - i - 1):.0f} s",
            file=sys.stderr,
        )
    converged = all(f["error"] <= spec.tol for f in facts)
    if not converged:
        print(
            f"ot: Sinkhorn stopped at max_iter {spec.max_iter} above tol {spec.tol:g} "
            "in some batch; the ranking may be rough",
            file=sys.stderr,
        )
    return scores, {
        "batches": n_batches,
        "target_points": m,
        "iterations": max(f["iterations"] for f in facts),
        "max_error": max(f["error"] for f in facts),
        "converged": converged,
        "solvers": sorted({f["solver"] for f in facts}),
    }


def scores(
    method: str,
    pool: np.ndarray,
    target: np.ndarray,
    ot_spec: OTSpec,
    seed: int,
    draw: int | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """(n,) scores of `method` for every pool document (lower: chosen first), and solver facts.
    draw: a random set's training seed (random_scores)."""
    if method == "random":
        return random_scores(len(pool), seed, draw), {}
    if method == "similarity":
        return similarity_scores(pool, target), {}
    if method == "ot":
        return ot_scores(pool, target, ot_spec, seed)
    raise ValueError(f"unknown selection method {method!r}; expected one of {METHODS}")


def choose(
    order: np.ndarray, doc_tokens: np.ndarray, k: int | None, tokens: int | None
) -> np.ndarray:
    """Indices of the chosen documents, in rank order: the first `k`, or the shortest prefix of
    the ranking whose tokens (each document's, its end-of-document token included) reach
    `tokens` (all of them if the pool holds fewer)."""
    if k is not None:
        return order[:k]
    cumulative = np.cumsum(doc_tokens[order])
    return order[: int(np.searchsorted(cumulative, tokens)) + 1]


def transport_cost(x: np.ndarray, y: np.ndarray, epsilon: float, seed: int, n: int = 1000) -> float:
    """Entropic OT cost between seeded samples of at most `n` rows of x and y (uniform
    weights): how far a chosen set lies from the target, on one scale for every method."""
    import ot

    rng = np.random.default_rng([seed, 4])
    x = x[np.sort(rng.permutation(len(x))[:n])]
    y = y[np.sort(rng.permutation(len(y))[:n])]
    cost = ot.dist(x, y).astype(np.float64)
    a, b = np.full(len(x), 1.0 / len(x)), np.full(len(y), 1.0 / len(y))
    return float(ot.sinkhorn2(a, b, cost, epsilon, method="sinkhorn_log", numItermax=2000))
