"""The design loop's surrogate and proposals (curriculab.design.surrogate), on a synthetic
objective with a known optimum: no training. The loop must get near the optimum in a stated
number of proposals and do better than random proposals of the same count."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import qmc

from curriculab.design.surrogate import Box, propose, recommend

OPTIMUM = np.array([0.7, 0.25])  # in parameter units; the objective's minimum is 1.0 there
BOX = Box.of({"window": (0.0, 1.0), "strength": (0.0, 1.0)})
START, ROUNDS, PER_ROUND = 4, 4, 2  # 4 Sobol points, then 4 rounds of 2 proposals: 12 cells
REPEATS = 10


def objective(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A bowl around OPTIMUM with a ripple that vanishes at it, plus seed-like noise (sd 0.02
    nats/token): what a study's objective over two schedule parameters might look like."""
    d2 = ((np.atleast_2d(x) - OPTIMUM) ** 2).sum(axis=1)
    ripple = 0.4 * np.sin(8 * x[:, 0]) * np.sin(6 * x[:, 1]) * d2
    return 1.0 + 2.0 * d2 + ripple + rng.normal(0.0, 0.02, len(d2))


def design_loop(repeat: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(repeat)
    x = qmc.Sobol(2, scramble=True, seed=repeat).random(START)
    y = objective(x, rng)
    for round_ in range(ROUNDS):
        new = propose(BOX, x, y, PER_ROUND, seed=1000 * repeat + round_)
        assert len(new) == PER_ROUND
        x, y = np.vstack([x, new]), np.append(y, objective(new, rng))
    return x, y, recommend(BOX, x, y, seed=repeat)[0]


def test_the_loop_finds_the_optimum_better_than_random_proposals() -> None:
    loop, random = [], []
    for repeat in range(REPEATS):
        x, _, best = design_loop(repeat)
        loop.append(np.linalg.norm(best - OPTIMUM))
        # The same start and number of cells, the rest uniformly random; the same recommender.
        rng = np.random.default_rng(10_000 + repeat)
        xr = np.vstack([x[:START], rng.random((ROUNDS * PER_ROUND, 2))])
        yr = objective(xr, np.random.default_rng(repeat))
        random.append(np.linalg.norm(recommend(BOX, xr, yr, seed=repeat)[0] - OPTIMUM))
    assert np.mean(loop) < 0.1  # within 0.1 of the optimum (box side 1) after 8 proposals
    assert np.mean(loop) < 0.85 * np.mean(random), (np.mean(loop), np.mean(random))


def test_proposals_are_reproducible_and_never_repeat_a_point() -> None:
    x, y, _ = design_loop(0)
    first = propose(BOX, x, y, 3, seed=7)
    assert np.array_equal(first, propose(BOX, x, y, 3, seed=7))  # same inputs, same cells
    again = propose(BOX, x, y, 3, seed=7, exclude=first)
    for point in again:
        assert (
            np.min(np.linalg.norm(BOX.unit(np.vstack([x, first])) - BOX.unit(point), axis=1)) > 0.02
        )


def test_the_first_proposal_is_the_predicted_optimum_and_a_bad_box_is_refused() -> None:
    x, y, best = design_loop(1)
    assert propose(BOX, x, y, 1, seed=1)[0] == pytest.approx(best, abs=0.05)
    with pytest.raises(ValueError, match="low < high"):
        Box.of({"window": (0.3, 0.3)})
