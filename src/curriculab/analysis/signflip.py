"""The exact sign-flip test: a robustness check beside every paired t-test verdict.

Under the null of no effect, a seed's paired difference (schedule minus control) is as likely
positive as negative when the differences are symmetric about 0, whatever their distribution:
flipping the signs of the n differences gives 2^n equally likely samples. The exact two-sided
p-value is the share of them whose mean is at least as far from 0 as the observed one
(scipy.stats.permutation_test with one sample, every flip enumerated). It assumes no normality,
which the t-test does with three to eight seeds; the price is a floor: the smallest attainable
p-value with n seeds is 2 / 2^n (0.25 with three seeds, 0.0625 with five), so with few seeds the
test cannot reach a family's alpha at all, however large the effect. `seeds_needed` says how
many seeds would let it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
from scipy import stats


def sign_flip_p(values: Sequence[float] | np.ndarray) -> float:
    """Exact two-sided sign-flip p-value of the mean of `values` against 0; NaN (values that
    are not finite are dropped) below two values, as for the t-test beside it."""
    x = np.asarray([v for v in values if v is not None], dtype=np.float64)
    x = x[np.isfinite(x)]
    if len(x) < 2:
        return math.nan
    result = stats.permutation_test(
        (x,),
        np.mean,
        permutation_type="samples",
        vectorized=True,
        n_resamples=np.inf,  # every one of the 2^n flips: exact
        alternative="two-sided",
        axis=-1,
    )
    return float(result.pvalue)


def sign_flip_ps(samples: Iterable[Sequence[float] | None]) -> np.ndarray:
    """`sign_flip_p` of every sample (None: NaN)."""
    return np.array([math.nan if s is None else sign_flip_p(s) for s in samples], dtype=np.float64)


def smallest_p(n: int) -> float:
    """The smallest two-sided sign-flip p-value n values can give: 2 / 2^n (1 below one)."""
    return 1.0 if n < 1 else min(1.0, 2.0 / 2.0**n)


def seeds_needed(alpha: float) -> int:
    """The fewest values whose smallest sign-flip p-value is below `alpha` (0 < alpha <= 1)."""
    if not 0 < alpha <= 1:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    n = 1
    while smallest_p(n) >= alpha:
        n += 1
    return n
