"""Tests for domain utility by removal (curriculab.analysis.utility), by simulation with a known
truth: studies whose effect of removing a domain is set by hand, with a large per-seed luck that
only pairing by seed cancels."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from scipy import stats

from curriculab.analysis.utility import utility_table

DOMAINS = ["web", "code", "books"]  # the target is not listed first: the objective row still is
TARGET = "code"
REMOVALS = {"window_no_web": {"domain": "web", "reference": "window"}}


def simulated_cells(
    effects: dict[str, float],
    rng: np.random.Generator,
    seeds: range = range(30),
    ratios: tuple[str, ...] = ("0.1",),
    noise: float = 0.01,
    luck: float = 0.2,
) -> pl.DataFrame:
    """A cells table: per ratio and seed a reference cell ("window"), a removal cell
    ("window_no_web") whose loss on each domain is higher by `effects[domain]` (nats/token),
    and an unrelated "shuffled" cell. The two cells of a seed share its luck (sd `luck`, the
    seed's data and initial weights); their difference has sd `noise`."""
    rows = []
    for ratio in ratios:
        for seed in seeds:
            shared = rng.normal(0, luck, size=len(DOMAINS))
            for schedule, shift in (("window", 0.0), ("window_no_web", 1.0), ("shuffled", 0.5)):
                own = rng.normal(0, noise / math.sqrt(2), size=len(DOMAINS))
                losses = {
                    f"test_loss_{d}": 3.0 + shared[i] + own[i] + shift * effects[d]
                    for i, d in enumerate(DOMAINS)
                }
                rows.append(
                    {
                        "ratio": ratio,
                        "ratio_value": float(ratio),
                        "schedule": schedule,
                        "arm": "wsd",
                        "seed": seed,
                        "d1_test_loss": losses[f"test_loss_{TARGET}"],
                        **losses,
                    }
                )
    return pl.DataFrame(rows)


def test_a_known_effect_is_recovered_by_pairing_seeds() -> None:
    rng = np.random.default_rng(16)
    effects = {"code": 0.05, "web": 0.2, "books": 0.0}
    cells = simulated_cells(effects, rng)
    table = utility_table(cells, REMOVALS, DOMAINS, TARGET)
    assert table["measured"].to_list() == ["code", "web", "books"]  # the objective first
    assert table["objective"].to_list() == [True, False, False]
    code = table.row(0, named=True)
    assert code["n_pairs"] == 30 and code["removed"] == "web" and code["reference"] == "window"
    assert code["ci_low"] <= effects["code"] <= code["ci_high"]
    assert code["ci_low"] > 0  # removing web hurts code: web was useful for the objective
    # Paired, the seed's luck (sd 0.2) cancels: an unpaired interval would be ~0.2 wide.
    assert code["ci_high"] - code["ci_low"] < 0.02
    assert code["verdict"] == "removing web raises code's loss"
    # The same numbers as scipy's paired t-test on the two schedules' losses, seed by seed.
    removed, kept = (
        cells.filter(pl.col("schedule") == s).sort("seed")["test_loss_code"].to_numpy()
        for s in ("window_no_web", "window")
    )
    interval = stats.ttest_rel(removed, kept).confidence_interval(0.95)
    assert (code["ci_low"], code["ci_high"]) == pytest.approx(tuple(interval), rel=1e-9)
    assert code["change"] == pytest.approx(float(np.mean(removed - kept)), rel=1e-12)
    assert code["reference_loss"] == pytest.approx(float(kept.mean()), rel=1e-12)
    books = table.row(2, named=True)
    assert books["ci_low"] <= 0 <= books["ci_high"]
    assert books["verdict"] == "no detectable change"


def test_intervals_cover_the_truth_95_percent_of_the_time() -> None:
    """1,000 simulated (ratio, arm) comparisons of 5 seeds each: a t-interval covers the true
    change in ~95% of them (a normal quantile at 5 seeds would cover only ~88%), and a domain
    whose removal changes nothing is called changed in ~5%."""
    rng = np.random.default_rng(2406)
    effects = {"code": 0.0, "web": 0.03, "books": -0.02}
    ratios = tuple(str(i + 1) for i in range(50))
    tables = [
        utility_table(simulated_cells(effects, rng, range(5), ratios), REMOVALS, DOMAINS, TARGET)
        for _ in range(20)
    ]
    table = pl.concat(tables)
    for domain, truth in effects.items():
        rows = table.filter(pl.col("measured") == domain)
        assert rows.height == 1000
        covered = ((rows["ci_low"] <= truth) & (truth <= rows["ci_high"])).mean()
        assert 0.92 <= covered <= 0.98, (domain, covered)
    null = table.filter(pl.col("measured") == "code")["verdict"]
    assert 0.92 <= (null == "no detectable change").mean() <= 0.98


def test_pairs_are_by_seed_whatever_the_row_order() -> None:
    rng = np.random.default_rng(7)
    cells = simulated_cells({"code": 0.05, "web": 0.1, "books": 0.0}, rng, range(13))
    # Seeds 0-2 have only the reference, 10-12 only the removal: 7 pairs (seeds 3-9).
    cells = cells.filter(
        ~((pl.col("schedule") == "window_no_web") & (pl.col("seed") < 3))
        & ~((pl.col("schedule") == "window") & (pl.col("seed") >= 10))
    )
    by_seed = {
        (row["schedule"], row["seed"]): row["test_loss_code"] for row in cells.iter_rows(named=True)
    }
    changes = [by_seed[("window_no_web", s)] - by_seed[("window", s)] for s in range(3, 10)]
    expected = stats.t.interval(0.95, 6, loc=np.mean(changes), scale=stats.sem(changes))
    table = utility_table(cells, REMOVALS, DOMAINS, TARGET)
    code = table.row(0, named=True)
    assert code["n_pairs"] == 7
    assert code["change"] == pytest.approx(float(np.mean(changes)), rel=1e-12)
    assert (code["ci_low"], code["ci_high"]) == pytest.approx(expected, rel=1e-9)
    shuffled = cells.sample(fraction=1.0, shuffle=True, seed=3)
    assert not shuffled["seed"].equals(cells["seed"])  # the shuffle did move rows
    assert utility_table(shuffled, REMOVALS, DOMAINS, TARGET).equals(table)


def test_no_removals_give_an_empty_table_with_the_columns() -> None:
    cells = simulated_cells({"code": 0.0, "web": 0.0, "books": 0.0}, np.random.default_rng(0))
    full = utility_table(cells, REMOVALS, DOMAINS, TARGET)
    empty = utility_table(cells, {}, DOMAINS, TARGET)
    assert empty.is_empty() and empty.schema == full.schema
    assert {"measured", "removed", "objective", "change", "ci_low", "ci_high"} <= set(full.columns)


def test_one_seed_gives_no_interval_and_no_verdict() -> None:
    cells = simulated_cells({"code": 0.5, "web": 0.5, "books": 0.5}, np.random.default_rng(1))
    table = utility_table(cells.filter(pl.col("seed") == 4), REMOVALS, DOMAINS, TARGET)
    assert table["n_pairs"].to_list() == [1, 1, 1]
    assert table["ci_low"].null_count() == 3 and table["change"].null_count() == 0
    assert set(table["verdict"]) == {"too few seeds for an interval"}


@pytest.mark.parametrize(
    ("removals", "match"),
    [
        ({"window_no_web": {"domain": "wiki", "reference": "window"}}, "'wiki' is not a domain"),
        ({"window_no_web": {"domain": "web", "reference": "late"}}, "'late' has no cells"),
        ({"window_no_books": {"domain": "books", "reference": "window"}}, "has no cells"),
    ],
)
def test_a_removal_the_cells_cannot_answer_is_refused(removals: dict, match: str) -> None:
    cells = simulated_cells({"code": 0.0, "web": 0.0, "books": 0.0}, np.random.default_rng(2))
    with pytest.raises(ValueError, match=match):
        utility_table(cells, removals, DOMAINS, TARGET)


def test_with_a_stated_utility_the_objective_row_is_the_weighted_loss() -> None:
    rng = np.random.default_rng(17)
    effects = {"code": 0.05, "web": 0.2, "books": 0.0}
    weights = {"web": 0.5, "code": 0.25, "books": 0.25}
    cells = simulated_cells(effects, rng, seeds=range(10)).with_columns(
        objective=pl.sum_horizontal(pl.col(f"test_loss_{d}") * w for d, w in weights.items())
    )
    utility = {"weights": weights}
    table = utility_table(cells, REMOVALS, DOMAINS, TARGET, utility)
    assert table["measured"].to_list() == ["objective", "code", "web", "books"]
    assert table["objective"].to_list() == [True, False, False, False]
    row = table.row(0, named=True)  # the weighted effect: 0.5 x 0.2 + 0.25 x 0.05 = 0.1125
    assert row["ci_low"] <= 0.1125 <= row["ci_high"]
    assert row["verdict"] == "removing web raises the objective"


def test_readings_name_a_direction_only_after_holm_over_the_table() -> None:
    """With no true effect anywhere, per-comparison intervals over 3 domains x 4 ratios find a
    'direction' in about 1 - 0.95^12 = 46% of studies; Holm over the table holds that to 5%."""
    rng = np.random.default_rng(31)
    null = dict.fromkeys(DOMAINS, 0.0)
    ratios = ("0.05", "0.1", "0.2", "0.4")
    studies, directed, unadjusted = 150, 0, 0
    for _ in range(studies):
        cells = simulated_cells(null, rng, seeds=range(4), ratios=ratios, noise=0.05)
        table = utility_table(cells, REMOVALS, DOMAINS, TARGET)
        assert set(table["family_size"]) == {table.height} == {len(ratios) * len(DOMAINS)}
        excludes = (table["ci_low"] > 0) | (table["ci_high"] < 0)
        unadjusted += bool(excludes.any())
        named = table["verdict"].str.starts_with("removing")
        directed += bool(named.any())
        assert (named == (table["p_adjusted"] < 0.05)).all()
        flagged = table.filter(excludes & ~named)["verdict"]
        assert (flagged.str.contains("unadjusted 95% interval excludes 0")).all()
    se = math.sqrt(0.05 * 0.95 / studies)
    assert directed / studies <= 0.05 + 3 * se  # family-wise: at most alpha
    assert unadjusted / studies > 0.3  # the per-comparison reading it replaces did not hold it
    # The p-values are scipy's paired t-tests, Holm-adjusted by statsmodels over the table.
    p = [
        stats.ttest_1samp(
            cells.filter((pl.col("schedule") == "window_no_web") & (pl.col("ratio") == r))
            .sort("seed")[f"test_loss_{d}"]
            .to_numpy()
            - cells.filter((pl.col("schedule") == "window") & (pl.col("ratio") == r))
            .sort("seed")[f"test_loss_{d}"]
            .to_numpy(),
            0.0,
        ).pvalue
        for r in ratios
        for d in table.filter(pl.col("ratio") == r)["measured"]
    ]
    assert table["p_value"].to_numpy() == pytest.approx(p, rel=1e-9)
