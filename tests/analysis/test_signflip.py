"""The exact sign-flip test beside every t-test verdict (curriculab.analysis.signflip), checked
against a brute-force enumeration of the sign patterns and by simulation with a known truth."""

from __future__ import annotations

import itertools
import math

import numpy as np
import polars as pl
import pytest

from curriculab.analysis.signflip import seeds_needed, sign_flip_p, smallest_p
from curriculab.analysis.statistics import hypothesis_verdicts


def brute_force(values: np.ndarray) -> float:
    """Share of the 2^n sign patterns whose |mean| reaches the observed |mean|."""
    observed = abs(values.mean())
    means = [
        abs((values * np.array(s)).mean()) for s in itertools.product((1, -1), repeat=len(values))
    ]
    return float(np.mean(np.array(means) >= observed * (1 - 1e-12)))


def test_the_p_value_is_the_share_of_sign_patterns_at_least_as_extreme() -> None:
    rng = np.random.default_rng(3)
    for n in (2, 3, 5, 8):
        for _ in range(5):
            values = rng.normal(0.3, 1.0, n)
            assert sign_flip_p(values) == pytest.approx(brute_force(values), abs=1e-12)
    # All of the same sign: the floor, 2 / 2^n, whatever the size of the effect.
    for n in (3, 5, 6):
        assert sign_flip_p(-np.arange(1.0, n + 1)) == pytest.approx(smallest_p(n))
        assert smallest_p(n) == 2 / 2**n
    assert math.isnan(sign_flip_p([0.5])) and math.isnan(sign_flip_p([]))
    assert sign_flip_p([0.1, float("nan"), -0.2, 0.3]) == sign_flip_p([0.1, -0.2, 0.3])


def test_seeds_needed_is_the_fewest_whose_floor_is_below_alpha() -> None:
    for alpha in (0.5, 0.1, 0.05, 0.05 / 8, 0.001):
        n = seeds_needed(alpha)
        assert smallest_p(n) < alpha <= smallest_p(n - 1)
    assert seeds_needed(0.05) == 6  # 2/64 = 0.031 < 0.05 <= 2/32
    with pytest.raises(ValueError, match="alpha"):
        seeds_needed(0.0)


def test_the_sign_flip_test_holds_its_level_where_the_t_test_does_not() -> None:
    """A null with heavy, symmetric tails (Cauchy differences, five seeds): the exact test
    rejects at most alpha of the time; the t-test's level is not guaranteed (checked only to
    be what it is, not asserted)."""
    rng = np.random.default_rng(11)
    alpha, runs, n = 0.07, 2000, 5  # 2/32 = 0.0625 < 0.07: the floor is attainable
    rejected = sum(sign_flip_p(rng.standard_cauchy(n)) <= alpha for _ in range(runs))
    assert rejected / runs <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / runs)
    # And it has power: a shift of 1 sd with normal noise, eight seeds.
    power = np.mean([sign_flip_p(rng.normal(1.0, 1.0, 8)) < 0.05 for _ in range(300)])
    assert power > 0.5


def test_every_verdict_carries_its_sign_flip_p_value_and_floor() -> None:
    """H1 and H2 rows: the exact p-value of the seed differences (H1) or per-seed slopes (H2),
    2 / 2^n beside it, and Holm over the same family."""
    rng = np.random.default_rng(2)
    rows = []
    for seed in range(4):
        luck = rng.normal(0, 0.3)
        for ratio in (0.1, 0.3, 0.9):
            for schedule, shift in (("shuffled", 0.0), ("late", -0.2)):
                rows.append({"ratio": str(ratio), "ratio_value": ratio, "schedule": schedule,
                             "arm": "wsd", "seed": seed,
                             "d1_test_loss": 4 + luck + shift + rng.normal(0, 0.05)})  # fmt: skip
    cells = pl.DataFrame(rows)
    verdicts = hypothesis_verdicts(cells, ["late"], "shuffled")
    for row in verdicts.filter(pl.col("hypothesis") == "H1").iter_rows(named=True):
        pair = cells.filter(pl.col("ratio") == row["ratio"]).sort("seed")
        late = pair.filter(pl.col("schedule") == "late")["d1_test_loss"].to_numpy()
        base = pair.filter(pl.col("schedule") == "shuffled")["d1_test_loss"].to_numpy()
        assert row["p_signflip"] == pytest.approx(brute_force(late - base), abs=1e-12)
        assert row["p_signflip_min"] == 2 / 2**4
    assert verdicts["p_signflip"].is_not_nan().all()
    tested = verdicts["p_signflip"].to_numpy()
    adjusted = np.minimum(1, np.maximum.accumulate(np.sort(tested) * (len(tested) - np.arange(4))))
    order = np.argsort(tested, kind="stable")
    assert verdicts["p_signflip_adjusted"].to_numpy()[order] == pytest.approx(adjusted)


def test_the_report_states_the_floor_and_the_seeds_that_would_reach_alpha() -> None:
    from curriculab.report.sections import verdict_sentences

    rows = [
        {"ratio": str(r), "ratio_value": r, "schedule": s, "arm": "wsd", "seed": seed,
         "d1_test_loss": 4.0 + 0.01 * seed - (0.3 if s == "late" else 0.0) + 0.001 * r * seed}
        for seed in range(3) for r in (0.1, 0.3) for s in ("shuffled", "late")
    ]  # fmt: skip
    verdicts = hypothesis_verdicts(pl.DataFrame(rows), ["late"], "shuffled")
    assert set(verdicts["p_signflip_min"]) == {0.25}
    text = verdict_sentences(verdicts, "shuffled")
    assert text.count("sign-flip p = 0.25") == 2  # both H1 rows: every seed lowers the loss
    assert "with 3 seeds it cannot go below 0.25, so cannot reach 0.05 (6 seeds could)" in text
