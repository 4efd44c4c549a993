"""The real verdict procedure on simulated studies whose truth is known.

Each simulated study ("grid") has the shape of a realistic one: three D1 ratios, the baseline
and two late schedules, two learning-rate arms, three seeds (five in places), with the noise
structure of the real experiment:

- a seed effect shared by every cell of a seed (the initial weights);
- a seed x ratio effect shared by every schedule and arm (the nested D1 subsample);
- a seed-specific tilt in ln(ratio) per (schedule, arm): a seed that suits a schedule at small
  ratios does so in all of its cells. This is what makes pooling the cells of all seeds into one
  regression anti-conservative, and why H2 fits a slope per seed;
- independent noise per cell.

The null tests assert that the probability of any "supported" or "contradicted" verdict in a
grid without true effects stays at alpha (within Monte Carlo error). Two further tests show
that this check has teeth: the same grids judged without the multiplicity correction, or with
H2 pooled over seeds as if the cells were independent, fail it clearly. The power test asserts
that realistic true effects are found.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from curriculab.analysis.statistics import hypothesis_verdicts
from tests.support.simulation import frozen_heap

ALPHA = 0.05
LABELS = np.array(["0.05", "0.15", "0.45"])
RATIOS = LABELS.astype(float)
BASELINE = "shuffled"
LATE = ["d1_last", "end_window"]
SCHEDULES = np.array([BASELINE, *LATE])
ARMS = np.array(["constant", "wsd_window"])
ARM_LEVEL = np.array([0.0, -0.05])  # nats: the decaying arm ends a little lower


@dataclass(frozen=True)
class Truth:
    """What a simulated grid's final D1 test losses are made of (nats/token)."""

    seeds: int = 3
    seed_sd: float = 0.1  # shared by every cell of a seed
    subsample_sd: float = 0.1  # seed x ratio, shared by every schedule and arm
    tilt_sd: float = 0.1  # nats per unit of ln(ratio), seed-specific, per (schedule, arm)
    cell_sd: float = 0.05  # independent per cell
    benefit: tuple[float, float, float] = (0.0, 0.0, 0.0)  # of each late schedule, per ratio


def simulate(truth: Truth, grids: int, rng: np.random.Generator) -> np.ndarray:
    """Final D1 test losses, shape (grids, seeds, ratios, schedules, arms), all at once."""
    x = np.log(RATIOS)
    shape = (grids, truth.seeds, len(RATIOS), len(SCHEDULES), len(ARMS))
    # More D1 lowers its loss; the arm shifts every cell of its arm alike.
    loss = 3.0 - 0.25 * (x - x[0])[:, None, None] + ARM_LEVEL
    loss = loss + rng.normal(0, truth.seed_sd, (*shape[:2], 1, 1, 1))
    loss = loss + rng.normal(0, truth.subsample_sd, (*shape[:3], 1, 1))
    # The tilt turns about the middle of the grid: a tilt about another point would also shift
    # the seed's level, which makes pooled regressions conservative and hides their flaw.
    tilt = rng.normal(0, truth.tilt_sd, (*shape[:2], 1, *shape[3:]))
    loss = loss + tilt * (x - x.mean())[:, None, None]
    loss = loss + rng.normal(0, truth.cell_sd, shape)
    is_late = (SCHEDULES != BASELINE).astype(float)
    return loss - np.asarray(truth.benefit)[:, None, None] * is_late[:, None]


def to_cells(losses: np.ndarray) -> list[pl.DataFrame]:
    """One `cells` frame per grid, as the pipeline builds them."""
    grid, seed, ratio, schedule, arm = np.indices(losses.shape).reshape(5, -1)
    frame = pl.DataFrame(
        {
            "grid": grid,
            "ratio": LABELS[ratio],
            "ratio_value": RATIOS[ratio],
            "schedule": SCHEDULES[schedule],
            "arm": ARMS[arm],
            "seed": seed,
            "d1_test_loss": losses.reshape(-1),
        }
    )
    return frame.partition_by("grid", maintain_order=True, include_key=False)


def verdicts(losses: np.ndarray) -> pl.DataFrame:
    """The real procedure on every grid, stacked, with a `grid` column."""
    with frozen_heap():
        tables = [
            hypothesis_verdicts(cells, LATE, BASELINE, ALPHA).with_columns(grid=pl.lit(i))
            for i, cells in enumerate(to_cells(losses))
        ]
    return pl.concat(tables)


def per_grid(table: pl.DataFrame, column: str) -> np.ndarray:
    """`column` as (grids, tests); every grid's table has the same rows in the same order."""
    return table[column].to_numpy().reshape(table["grid"].n_unique(), -1)


def family_wise_rate(rejected: np.ndarray) -> float:
    """Fraction of grids with at least one rejected test; rejected is (grids, tests)."""
    return float(rejected.any(axis=1).mean())


def allowed(grids: int, rate: float = ALPHA) -> float:
    """The nominal rate plus three Monte Carlo standard errors."""
    return rate + 3 * math.sqrt(rate * (1 - rate) / grids)


def pooled_h2_p_values(losses: np.ndarray) -> np.ndarray:
    """The flawed H2 (as the old code did): one OLS of the benefit on ln(ratio) over all the
    cells of every seed, as if independent; two-sided p per (grid, late schedule, arm)."""
    benefit = losses[..., :1, :] - losses[..., 1:, :]  # (grids, seeds, ratios, late, arms)
    grids, seeds, ratios = benefit.shape[:3]
    y = benefit.reshape(grids, seeds * ratios, -1)
    x = np.tile(np.log(RATIOS), seeds)[None, :, None]
    xc, yc = x - x.mean(), y - y.mean(axis=1, keepdims=True)
    sxx = (xc**2).sum()
    slope = (xc * yc).sum(axis=1) / sxx
    residual = yc - slope[:, None] * xc
    se = np.sqrt((residual**2).sum(axis=1) / (seeds * ratios - 2) / sxx)
    return 2 * stats.t.sf(np.abs(slope / se), seeds * ratios - 2)


@pytest.fixture(scope="module")
def null_grids() -> tuple[np.ndarray, pl.DataFrame]:
    """2000 three-seed grids without any true effect, and their verdict tables."""
    losses = simulate(Truth(), 2000, np.random.default_rng(20240611))
    return losses, verdicts(losses)


def test_null_family_wise_error_is_controlled(null_grids) -> None:
    losses, table = null_grids
    assert table.height == len(losses) * 16 and (table["family_size"] == 16).all()
    rate = family_wise_rate(per_grid(table, "verdict") != "inconclusive")
    assert rate <= allowed(len(losses)), rate


def test_null_family_wise_error_is_controlled_with_five_seeds() -> None:
    losses = simulate(Truth(seeds=5), 1000, np.random.default_rng(7))
    table = verdicts(losses)
    assert (table["n"] == 5).all()
    rate = family_wise_rate(per_grid(table, "verdict") != "inconclusive")
    assert rate <= allowed(len(losses)), rate


def test_without_the_correction_the_null_check_fails(null_grids) -> None:
    losses, table = null_grids
    p_value = per_grid(table, "p_value")
    # Each test alone holds its level (the per-test t-tests are exact) ...
    assert (p_value < ALPHA).mean() <= allowed(len(losses))
    # ... but sixteen of them at 5% each reject somewhere in far more than 5% of grids.
    unadjusted = family_wise_rate(p_value < ALPHA)
    assert unadjusted > 4 * ALPHA and unadjusted > allowed(len(losses)), unadjusted


def test_pooled_h2_is_anti_conservative_and_fails_the_null_check(null_grids) -> None:
    losses, table = null_grids
    pooled = pooled_h2_p_values(losses).reshape(len(losses), -1)
    hypothesis = per_grid(table, "hypothesis")[0]
    is_h2 = hypothesis == "H2"
    # The helper is an ordinary OLS: check one (grid, schedule, arm) against scipy.
    one = losses[0, :, :, 0, 0] - losses[0, :, :, 1, 0]
    fit = stats.linregress(np.tile(np.log(RATIOS), len(one)), one.reshape(-1))
    assert pooled[0, 0] == pytest.approx(fit.pvalue, rel=1e-9)
    assert per_grid(table, "schedule")[0][is_h2].tolist() == ["d1_last"] * 2 + ["end_window"] * 2
    assert per_grid(table, "arm")[0][is_h2].tolist() == [*ARMS, *ARMS]
    # The per-seed slopes hold the level; pooling the cells of a seed as independent does not.
    per_seed = per_grid(table, "p_value")[:, is_h2]
    assert (per_seed < ALPHA).mean() <= allowed(len(losses))
    assert (pooled < ALPHA).mean() > 3 * ALPHA, (pooled < ALPHA).mean()
    # Swapped into the procedure, Holm and all, it fails the null check.
    p_value = per_grid(table, "p_value")
    p_value[:, is_h2] = pooled
    with frozen_heap():
        adjusted = np.array([multipletests(p, alpha=ALPHA, method="holm")[1] for p in p_value])
    rate = family_wise_rate(adjusted < ALPHA)
    assert rate > allowed(len(losses)) + 0.05, rate


def test_power_for_realistic_effects() -> None:
    """A late schedule lowers D1 loss by 0.6 nats at the smallest ratio down to 0.2 at the
    largest (a benefit shrinking by 0.18 nats per unit of ln ratio), against cell noise of
    0.05 nats and seed-specific tilts of 0.03 nats per unit of ln ratio, with five seeds."""
    truth = Truth(seeds=5, tilt_sd=0.03, benefit=(0.6, 0.4, 0.2))
    losses = simulate(truth, 400, np.random.default_rng(11))
    table = verdicts(losses)
    verdict, hypothesis = per_grid(table, "verdict"), per_grid(table, "hypothesis")[0]
    for name in ("H1", "H2"):
        supported = (verdict[:, hypothesis == name] == "supported").mean()
        assert supported >= 0.8, (name, supported)
    assert (verdict == "contradicted").mean() <= 0.001
    # The estimates are the truth on average: the sign conventions are right.
    h1 = per_grid(table, "estimate")[:, hypothesis == "H1"].reshape(len(losses), 4, 3)
    assert h1.mean(axis=(0, 1)) == pytest.approx(-np.array(truth.benefit), abs=0.01)
    true_slope = stats.linregress(np.log(RATIOS), truth.benefit).slope
    h2 = per_grid(table, "estimate")[:, hypothesis == "H2"]
    assert h2.mean() == pytest.approx(true_slope, abs=0.01)
