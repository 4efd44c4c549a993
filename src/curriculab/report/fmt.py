"""Numbers for people: the one place the report turns a value into text.

Every table cell, sentence and chart label of the report formats its numbers here, so one kind
of quantity reads the same everywhere:

- token counts: 3 significant digits and a suffix: 950, 25.8k, 270k, 1.23M, 4.1B;
- counts of things (cells, seeds, documents, blocks): whole, with thousands separators: 12,345;
- floating-point operations: 3 significant digits and an SI prefix: 950 FLOP, 4.5 PFLOP;
- durations: 0.32 s, 3.2 s, 41 s, 5 min 41 s, 2 h 5 min;
- losses and loss differences: nats/token, 3 decimals (differences signed: +0.012);
- p-values: 2 significant digits, "<1e-4" below 1e-4;
- shares and fractions: percent with 1 decimal: 12.3%;
- scores of unknown scale (harness metrics): 3 decimals below 100, whole with separators above.

A missing value (None or NaN) reads "n/a". Standard library only: the report stays torch-free.
"""

from __future__ import annotations

import math

NA = "n/a"
# Suffixes of token counts, smallest first. "B" not SI's "G": language-model papers count
# tokens in billions ("1.5B tokens").
_SUFFIXES = (("k", 1e3), ("M", 1e6), ("B", 1e9), ("T", 1e12))

# Vega-Lite format strings and expressions for the charts, matching the rules above.
VEGA_LOSS = ".3f"
VEGA_PERCENT = ".1%"


def vega_tokens(field: str) -> str:
    """A Vega expression that labels the token count `field` (e.g. "datum.value") as the
    tables do: d3's SI format with 3 significant digits, "B" for "G", and "0" not "0.00"."""
    return f"{field} == 0 ? '0' : replace(format({field}, '.3~s'), 'G', 'B')"


def tokens(value: float | None) -> str:
    """A token count (or a rate, tokens/s) to 3 significant digits: 950, 25.8k, 270k, 1.23M.

    Counts under 1,000 are whole; larger ones are rounded, so "270k" stands for 269,500 to
    270,499: the precision a reader compares at, and never a six-digit number to count.
    """
    if value is None or math.isnan(value):
        return NA
    if value < 0:
        return "-" + tokens(-value)
    if value < 999.5:  # whole below 1,000 ("999"); 999.5 already rounds to "1k"
        return str(round(value))
    for suffix, scale in _SUFFIXES:
        text = f"{value / scale:.3g}"
        if float(text) < 1000:  # else 999,600 rounds to "1e+03k": take the next suffix
            return text + suffix
    return f"{value / 1e12:,.0f}T"


# SI prefixes of FLOP counts, smallest first; a study of small models spends GFLOP to EFLOP.
_SI = (("k", 1e3), ("M", 1e6), ("G", 1e9), ("T", 1e12), ("P", 1e15), ("E", 1e18), ("Z", 1e21))


def flops(value: float | None) -> str:
    """A count of floating-point operations to 3 significant digits with an SI prefix:
    950 FLOP, 25.8 kFLOP, 4.5 PFLOP ("G", not tokens' "B": FLOPs are counted in SI). Beyond
    the zetta range: scientific, 1.23e+24 FLOP."""
    if value is None or math.isnan(value):
        return NA
    if value < 0:
        return "-" + flops(-value)
    if value < 999.5:
        return f"{round(value)} FLOP"
    for prefix, scale in _SI:
        text = f"{value / scale:.3g}"
        if float(text) < 1000:  # 999,600 would round to "1e+03k": take the next prefix
            return f"{text} {prefix}FLOP"
    return f"{value:.3g} FLOP"


def count(value: float | None) -> str:
    """A whole number of things with thousands separators: 12,345 (never "12345.0")."""
    return NA if value is None or math.isnan(value) else f"{round(value):,}"


def duration(seconds: float | None) -> str:
    """Seconds with the precision a person reads them at: 0.32 s, 3.2 s, 41 s, 5 min 41 s,
    2 h 5 min. Raises ValueError for a negative duration (a clock bug, not a number to show)."""
    if seconds is None or math.isnan(seconds):
        return NA
    if seconds < 0:
        raise ValueError(f"negative duration: {seconds} s")
    for digits, below in ((2, 1), (1, 10)):
        text = f"{seconds:.{digits}f}"
        if float(text) < below:
            return f"{text} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60} min"


def loss(value: float | None, signed: bool = False) -> str:
    """A loss or a difference of losses in nats/token, 3 decimals; signed shows "+" too."""
    if value is None or math.isnan(value):
        return NA
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def p_value(value: float | None) -> str:
    """2 significant digits; "<1e-4" below that, where more digits only claim false precision."""
    if value is None or math.isnan(value):
        return NA
    return f"{value:.2g}" if value >= 1e-4 else "<1e-4"


def percent(value: float | None) -> str:
    """A share or fraction in [0, 1] as a percentage with 1 decimal: 0.1234 -> "12.3%"."""
    return NA if value is None or math.isnan(value) else f"{value:.1%}"


def number(value: float | None, digits: int = 3) -> str:
    """Any other number: `digits` decimals, except that a whole number of 1,000 or more reads
    as a count ("269,952", not "269952.000")."""
    if value is None or math.isnan(value):
        return NA
    if float(value).is_integer() and abs(value) >= 1000:
        return count(value)
    return f"{value:.{digits}f}"


def score(value: float | None, signed: bool = False) -> str:
    """A score of unknown scale (an lm-evaluation-harness metric): 3 decimals (bits per byte,
    accuracy), whole with separators from 100 up (word perplexities run to the hundred
    thousands, where decimals only add noise); signed shows "+" too."""
    if value is None or math.isnan(value):
        return NA
    sign = "+" if signed else ""
    return f"{value:{sign},.0f}" if abs(value) >= 100 else f"{value:{sign}.3f}"


def interval(value: float | None, low: float | None, high: float | None, digits: int = 3) -> str:
    """'value [low, high]'; the value alone without an interval, '–' without a value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"
