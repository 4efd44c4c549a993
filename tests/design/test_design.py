"""The design loop's surrogate and proposals (curriculab.design.surrogate), on a synthetic
objective with a known optimum: no training. The loop must get near the optimum in a stated
number of proposals and do better than random proposals of the same count."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import qmc

from curriculab.design import surrogate
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


def latent_sd(gp, u: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The textbook posterior sd of f (no noise) under a fit's kernel, signal + white: prior
    variance k1(u, u) minus k1(u, X) (K + alpha I)^-1 k1(X, u), K the whole kernel at the
    training points; in y's units (the fit normalises y by its sd)."""
    signal, x = gp.kernel_.k1, gp.X_train_
    k = gp.kernel_(x) + gp.alpha * np.eye(len(x))
    cross = signal(u, x)
    var = signal.diag(u) - np.einsum("ij,ji->i", cross, np.linalg.solve(k, cross.T))
    return np.sqrt(np.maximum(var, 0.0)) * np.std(y)


def test_expected_improvement_takes_the_objectives_sd_not_the_noise(monkeypatch) -> None:
    """Noisy measurements (the fit's white-noise term well above zero, and a known noise on
    the diagonal): the sd that expected improvement is given at every candidate is the latent
    objective's posterior sd, computed here from the fitted kernel by the textbook formula;
    the noise of a measurement is no room for improvement. (A measurement's predictive sd
    exceeds it at every point: a point measured many times would look as promising as an
    unexplored one.)"""
    rng = np.random.default_rng(0)
    x = rng.random((30, 2))
    y = (x**2).sum(axis=1) + rng.normal(0, 0.2, 30)
    fits, given = [], []

    class Recording(surrogate.GaussianProcessRegressor):
        def fit(self, X, y):
            fits.append((self, np.array(y)))
            return super().fit(X, y)

    ei = surrogate.expected_improvement
    monkeypatch.setattr(surrogate, "GaussianProcessRegressor", Recording)
    monkeypatch.setattr(
        surrogate, "expected_improvement", lambda m, s, b: given.append(s) or ei(m, s, b)
    )
    surrogate.propose(BOX, x, y, 2, seed=0, noise=1e-3)
    gp, ys = fits[1]  # the first proposal's believer refit: what the second one's EI used
    assert gp.kernel_.k2.noise_level > 0.05  # a real white-noise term to leave out
    pool = surrogate.feasible_pool(BOX, 0, None)
    expected = latent_sd(gp, pool, ys)
    np.testing.assert_allclose(given[0], expected, rtol=1e-6, atol=1e-9)
    mean, sd = surrogate.latent_predict(gp, pool)
    np.testing.assert_allclose(sd, expected, rtol=1e-6, atol=1e-9)
    same_mean, total = gp.predict(pool, return_std=True)  # a measurement's: f's sd and noise
    np.testing.assert_allclose(mean, same_mean)
    white = gp.kernel_.k2.noise_level * np.var(ys)
    np.testing.assert_allclose(total**2, expected**2 + white, rtol=1e-6)
