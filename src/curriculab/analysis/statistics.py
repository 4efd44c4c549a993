"""Paired comparisons against the baseline, and H1/H2 verdicts (per-cell learning metrics:
analysis.learning; the objective and per-domain verdicts of K domains: analysis.domains).

A cell is one training run, keyed by (ratio, schedule, arm, seed). The seed fixes the model
initialisation and the D1 subsample (nested across ratios), and every schedule is trained under
every learning-rate arm, so a schedule is compared with the baseline *within* (ratio, arm, seed):
paired differences, never across arms. With the handful of seeds a grid affords, a t-interval
over seeds is the honest summary: a bootstrap over three values cannot produce a wider interval
than the data's own range, and undercovers.

The verdict procedure (`hypothesis_verdicts`), for every schedule of the verdict family (by
default the one that places D1 latest; `analysis.verdict_schedules` pre-registers others) and
every learning-rate arm:

- H1, per ratio: the late schedule lowers the final D1 test loss. Test: the paired differences
  (schedule minus baseline, nats/token) over seeds, two-sided one-sample t-test against 0.
- H2: the benefit (baseline minus schedule) shrinks as D1 grows. Test: per seed, the OLS slope
  of the benefit against ln(ratio) over that seed's ratios; then a two-sided one-sample t-test
  of the per-seed slopes against 0 (df = seeds - 1). Slopes are fitted per seed because the
  cells of one seed share the D1 subsample and the initial weights across ratios: a seed that
  happens to favour the schedule at small ratios does so for all of its cells, so pooling every
  cell into one regression as if independent understates the slope's error and rejects a true
  null far more often than its nominal level.
- One family: every H1 and H2 test of the table together, across schedules, arms and ratios.
  The report states them together and a reader acts on any "supported", so the probability of
  at least one false verdict in the table (family-wise error) is held at alpha. Holm's
  step-down correction does that under any dependence between the tests (they share the
  baseline's cells and seeds) and is uniformly more powerful than Bonferroni. A test without a
  p-value (too few seeds or ratios) is left out of the family and is inconclusive.
- A verdict is "supported" when the Holm-adjusted p-value is below alpha and the estimate
  points the hypothesis' way (both H1 and H2 predict a negative estimate), "contradicted" when
  it is below alpha the other way, "inconclusive" otherwise. The 95% intervals reported beside
  them are per-test t-intervals, not adjusted for multiplicity, so an interval may exclude 0
  while the verdict stays inconclusive.

tests/analysis/test_verdict_simulation.py checks the procedure on simulated grids of known
truth. The price of the correction is power: with three seeds a t-test has 2 degrees of freedom,
and the first Holm step of a 16-test family needs |t| > 18, so only large effects are found;
five seeds find realistic ones. This is why the default family is one schedule (8 tests for 3
ratios and 2 arms), and every other comparison in the report is labelled exploratory.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl
from scipy import special, stats
from statsmodels.stats.multitest import multipletests

# Learning-curve metrics live in analysis.learning; analyse adds them to the cells.
from curriculab.analysis.learning import (  # noqa: F401 (tokens_to_reach: known here too)
    CELL,
    curve_metrics,
    default_targets,
    tokens_to_reach,
)
from curriculab.analysis.signflip import sign_flip_ps, smallest_p

CONFIDENCE = 0.95
Z95 = float(stats.norm.ppf(0.5 + CONFIDENCE / 2))  # the two-sided 95% normal quantile
# A barcode describes the data order only, which the learning-rate arm does not change.
STREAM = ["ratio", "ratio_value", "schedule", "seed"]
# What a schedule is compared within: same data amount, learning-rate arm and seed.
PAIR = ["ratio", "arm", "seed"]
VERDICT_SCHEMA = {
    "hypothesis": pl.String,
    "schedule": pl.String,
    "arm": pl.String,
    "ratio": pl.String,
    "estimate": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "n": pl.Int64,
    "p_value": pl.Float64,
    "p_adjusted": pl.Float64,
    "family_size": pl.Int64,
    "verdict": pl.String,
    "correction": pl.String,
    "p_signflip": pl.Float64,  # exact sign-flip p-value, unadjusted (analysis.signflip)
    "p_signflip_min": pl.Float64,  # the smallest it can be with n seeds: 2 / 2^n
    "p_signflip_adjusted": pl.Float64,  # Holm over the same family's sign-flip p-values
    "control": pl.String,  # the baseline or the schedule's matched control
    "judged": pl.Boolean,  # the comparison differs in order alone (analysis.audit)
}


def t_quantile(n_seeds: pl.Expr, confidence: float = CONFIDENCE) -> pl.Expr:
    """The two-sided t quantile for `n_seeds` values (null below two), as a polars expression."""
    return n_seeds.map_elements(
        lambda n: float(stats.t.ppf(0.5 + confidence / 2, n - 1)) if n > 1 else None,
        return_dtype=pl.Float64,
    )


def t_interval(values: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(mean, low, high) of a t-interval; low and high are NaN with fewer than two values."""
    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean()) if len(values) else math.nan
    if len(values) < 2:
        return mean, math.nan, math.nan
    half = stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * values.std(ddof=1)
    half /= math.sqrt(len(values))
    return mean, mean - half, mean + half


def paired_differences(
    cells: pl.DataFrame,
    baseline: str,
    column: str,
    controls: Mapping[tuple[str, str], str] | None = None,
) -> pl.DataFrame:
    """Per (ratio, schedule, arm, seed): `column` minus its control's in the same ratio, arm
    and seed (cells without a partner are dropped). The control is the baseline, or for the
    (schedule, arm) keys of `controls` the schedule named there (a matched control:
    analysis.controls); the `control` column names it."""
    base = cells.select(
        *PAIR, pl.col("schedule").alias("control"), pl.col(column).alias("baseline_value")
    )
    treated = cells.filter(pl.col("schedule") != baseline)
    if controls:
        chosen = pl.DataFrame(
            [(s, a, c) for (s, a), c in controls.items()],
            schema={"schedule": pl.String, "arm": pl.String, "control": pl.String},
            orient="row",
        )
        treated = treated.join(chosen, on=["schedule", "arm"], how="left").with_columns(
            pl.col("control").fill_null(baseline)
        )
    else:
        treated = treated.with_columns(pl.lit(baseline).alias("control"))
    return treated.join(base, on=[*PAIR, "control"], how="inner").select(
        *CELL, "control", (pl.col(column) - pl.col("baseline_value")).alias("difference")
    )


def summarise_paired(differences: pl.DataFrame, metric: str) -> pl.DataFrame:
    """Per (ratio, schedule, arm): n, mean paired difference and its 95% t-interval."""
    keys = ["ratio", "ratio_value", "schedule", "arm"]
    rows = []
    for key, group in differences.sort([*keys, "seed"]).group_by(keys, maintain_order=True):
        mean, low, high = t_interval(group["difference"].to_numpy())
        rows.append(
            {
                **dict(zip(keys, key, strict=True)),
                "metric": metric,
                "n_seeds": group.height,
                "mean_difference": mean,
                "ci_low": low,
                "ci_high": high,
            }
        )
    return pl.DataFrame(rows).sort("ratio_value", "schedule", "arm")


def end_bias(barcodes: pl.DataFrame) -> dict[str, float]:
    """Per schedule: where D1 sits on average, as a fraction of training (0.5 = spread evenly,
    1 = at the very end), from the barcodes of every stream (ratio, schedule, seed)."""
    centre = (
        barcodes.with_columns(
            (pl.col("progress") + 0.5 / (pl.col("bin").max().over(STREAM) + 1)).alias("mid")
        )
        .sort([*STREAM, "bin"])
        .group_by(STREAM, maintain_order=True)
        .agg(
            ((pl.col("mid") * pl.col("target_share")).sum() / pl.col("target_share").sum()).alias(
                "centre"
            )
        )
        .group_by("schedule", maintain_order=True)
        .agg(pl.col("centre").mean())
    )
    return dict(zip(centre["schedule"], centre["centre"], strict=True))


def late_schedules(
    barcodes: pl.DataFrame,
    baseline: str,
    margin: float = 0.05,
    bias: Mapping[str, float] | None = None,
) -> list[str]:
    """The schedules whose D1 sits later than the baseline's by more than `margin` (a fraction
    of training, see `end_bias`), latest first. The margin keeps schedules that only differ
    from the baseline by binning noise out of the hypotheses, which are about late D1.
    bias: where each schedule places what the study values instead (analysis.domains:
    the utility's centre), when the study states a utility."""
    bias = end_bias(barcodes) if bias is None else bias
    if baseline not in bias:
        raise ValueError(f"baseline schedule {baseline!r} has no barcodes")
    late = [s for s, c in bias.items() if s != baseline and c - bias[baseline] > margin]
    return sorted(late, key=lambda s: (-bias[s], s))


def t_tests(
    estimate: np.ndarray, sd: np.ndarray, n: np.ndarray, confidence: float = CONFIDENCE
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ci_low, ci_high, p_value) of two-sided one-sample t-tests against 0, from each sample's
    mean, standard deviation (ddof=1) and size; NaN below two values.

    The numbers of scipy.stats.ttest_1samp on each sample (the tests check it), written in
    closed form for all samples at once: scipy's overhead of ~1 ms per call dominated the
    simulations that check this procedure by calling it thousands of times.
    """
    df = np.where(n >= 2, n - 1.0, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):  # zero spread: t is +-inf or NaN
        se = sd / np.sqrt(n)
        p_value = 2 * special.stdtr(df, -np.abs(estimate / se))
        half = special.stdtrit(df, 0.5 + confidence / 2) * se
    return estimate - half, estimate + half, p_value


def _summary(values: pl.Expr) -> list[pl.Expr]:
    """What a one-sample t-test needs of `values`: estimate (mean), sd (ddof=1) and n; and the
    values themselves (a list), which the sign-flip test beside it needs."""
    return [
        values.mean().alias("estimate"),
        values.std().alias("sd"),
        values.count().cast(pl.Int64).alias("n"),
        values.drop_nulls().alias("values"),
    ]


def h1_summaries(differences: pl.DataFrame) -> pl.DataFrame:
    """H1 per (schedule, arm, ratio): mean, sd and n of the paired D1 loss differences."""
    keys = ["schedule", "arm", "ratio", "ratio_value"]
    return (
        differences.sort([*keys, "seed"])
        .group_by(keys, maintain_order=True)
        .agg(pl.lit("H1").alias("hypothesis"), *_summary(pl.col("difference")))
    )


def seed_slopes(differences: pl.DataFrame) -> pl.DataFrame:
    """Per (schedule, arm, seed): OLS slope of the benefit (baseline minus schedule, nats/token)
    against ln(ratio) over that seed's ratios; null with fewer than two distinct ratios."""
    x = pl.col("ratio_value").log()
    keys = ["schedule", "arm", "seed"]
    return (
        differences.sort([*keys, "ratio_value"])
        .group_by(keys, maintain_order=True)
        .agg(
            pl.when(x.n_unique() >= 2)
            .then(pl.cov(x, -pl.col("difference")) / x.var())
            .alias("slope")
        )
    )


def h2_summaries(differences: pl.DataFrame) -> pl.DataFrame:
    """H2 per (schedule, arm): mean, sd and n (seeds) of the per-seed slopes."""
    return (
        seed_slopes(differences)
        .group_by(["schedule", "arm"], maintain_order=True)
        .agg(
            pl.lit("H2").alias("hypothesis"),
            pl.lit("all").alias("ratio"),
            pl.lit(None, dtype=pl.Float64).alias("ratio_value"),
            *_summary(pl.col("slope")),
        )
    )


def holm_verdicts(estimate: np.ndarray, p_value: np.ndarray, alpha: float) -> dict[str, Any]:
    """Holm-adjusted p-values over all tests with a p-value (one family), the family's size
    and the verdicts; both hypotheses predict a negative estimate."""
    tested = np.isfinite(p_value)
    adjusted = np.full(len(p_value), math.nan)
    if tested.any():
        adjusted[tested] = multipletests(p_value[tested], alpha=alpha, method="holm")[1]
    significant = tested & (adjusted < alpha)
    verdict = np.where(
        significant & (estimate < 0),
        "supported",
        np.where(significant & (estimate > 0), "contradicted", "inconclusive"),
    )
    return {"p_adjusted": adjusted, "family_size": int(tested.sum()), "verdict": verdict}


def hypothesis_verdicts(
    cells: pl.DataFrame,
    late: Sequence[str],
    baseline: str,
    alpha: float = 0.05,
    column: str = "d1_test_loss",
    controls: Mapping[tuple[str, str], str] | None = None,
    judged: Mapping[tuple[str, str, str, str], bool] | None = None,
) -> pl.DataFrame:
    """H1 per (schedule, arm, ratio) and H2 per (schedule, arm) for every schedule in `late`
    against `baseline`, from the final test loss `column` of `cells` (nats/token; `analyse`
    passes the study's `objective`, which is `d1_test_loss` itself without a utility), with
    Holm's correction over the whole table (see the module docstring).

    Columns: hypothesis, schedule, arm, ratio ("all" for H2), estimate (H1: mean paired
    difference, nats/token; H2: mean per-seed slope, nats/token per unit of ln ratio), ci_low,
    ci_high (95% t-interval over seeds, not adjusted for multiplicity), n (seeds), p_value
    (two-sided, unadjusted), p_adjusted (Holm), family_size, verdict, correction ("holm").
    Rows in the order of `late`, then arm, then H1 by ratio and H2 last.

    controls: {(schedule, arm): control} where a schedule is compared with another control
    than the baseline (its matched control). judged: {(ratio, schedule, control, arm): True
    where the comparison differs in order alone} (analysis.audit); a test that is not judged
    keeps its estimate, interval and unadjusted p-value, stays out of the Holm family and has
    the verdict "not judged" (H2 is judged only when every ratio's comparison is). None: every
    comparison is judged. Columns `control` and `judged` say which.
    """
    differences = paired_differences(cells, baseline, column, controls).filter(
        pl.col("schedule").is_in(list(late)) & pl.col("difference").is_not_nan()
    )
    if differences.is_empty():
        return pl.DataFrame(schema=VERDICT_SCHEMA)
    rank = {schedule: i for i, schedule in enumerate(late)}
    h1 = h1_summaries(differences).join(
        differences.select("schedule", "arm", "control").unique(), on=["schedule", "arm"]
    )
    h1 = h1.with_columns(
        pl.Series(
            "judged",
            [
                True if judged is None else judged.get((r, s, c, a), False)
                for r, s, c, a in h1.select("ratio", "schedule", "control", "arm").iter_rows()
            ],
            dtype=pl.Boolean,
        )
    )
    h2 = h2_summaries(differences).join(
        h1.group_by("schedule", "arm").agg(pl.col("control").first(), pl.col("judged").all()),
        on=["schedule", "arm"],
    )
    tests = pl.concat([h1, h2], how="diagonal_relaxed").sort(
        pl.col("schedule").replace_strict(rank, return_dtype=pl.Int64),
        "arm",
        "hypothesis",
        "ratio_value",
    )
    return tests.select(
        "hypothesis",
        "schedule",
        "arm",
        "ratio",
        **holm_family(tests, alpha),
    )


NOT_JUDGED = "not judged"  # a comparison that differs from its control in more than order


def holm_family(tests: pl.DataFrame, alpha: float, words: dict[str, str] | None = None) -> dict:
    """The columns of a table of tests judged as one Holm family, from each test's estimate,
    sd and n: estimate (NaN, not null, where there is nothing to test), ci_low, ci_high, n,
    p_value, p_adjusted, family_size, verdict (renamed through `words`) and correction; the
    exact sign-flip p-value of each test's `values` beside the t-test's (p_signflip,
    unadjusted, a robustness column that decides nothing), its floor p_signflip_min and its
    Holm adjustment over the same judged tests (p_signflip_adjusted); with
    the tests' `control` and `judged` (analysis.audit) where they have them: a test not judged
    stays out of the family (its p-value stays, unadjusted; its verdict is NOT_JUDGED)."""
    estimate, n = tests["estimate"].to_numpy(), tests["n"].to_numpy()
    low, high, p_value = t_tests(estimate, tests["sd"].to_numpy(), n)
    audited = "judged" in tests.columns
    judged = tests["judged"].to_numpy() if audited else np.ones(len(estimate), bool)
    holm = holm_verdicts(estimate, np.where(judged, p_value, np.nan), alpha)
    samples = tests["values"].to_list() if "values" in tests.columns else [None] * len(estimate)
    flips = sign_flip_ps(samples)
    flips_holm = holm_verdicts(estimate, np.where(judged, flips, np.nan), alpha)
    verdict = [words[v] for v in holm["verdict"]] if words else list(holm["verdict"])
    verdict = [v if ok else NOT_JUDGED for v, ok in zip(verdict, judged, strict=True)]
    return {
        "estimate": estimate,
        "ci_low": low,
        "ci_high": high,
        "n": pl.col("n"),
        "p_value": p_value,
        "p_adjusted": holm["p_adjusted"],
        "family_size": pl.lit(holm["family_size"], dtype=pl.Int64),
        "verdict": pl.Series(verdict, dtype=pl.String),
        "correction": pl.lit("holm"),
        "p_signflip": flips,
        "p_signflip_min": np.array([smallest_p(int(k)) for k in n], dtype=np.float64),
        "p_signflip_adjusted": flips_holm["p_adjusted"],
        **({"control": pl.col("control"), "judged": pl.col("judged")} if audited else {}),
    }


PAIRED_METRICS = ("d1_test_loss", "d2_test_loss", "d1_auc", "objective")
