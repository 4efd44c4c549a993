"""Tests for the report's number formatting (curriculab.report.fmt): the examples people read,
and properties over all values: a formatted number parses back to the value within the
rounding its rule states, and never grows into a raw six-digit count."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from curriculab.report import fmt
from tests.support.parse import TOKENS, parse_duration, parse_tokens


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0"),
        (950, "950"),
        (999.4, "999"),
        (999.6, "1k"),
        (1234, "1.23k"),
        (25_800, "25.8k"),
        (269_952, "270k"),
        (269_952.0, "270k"),
        (999_499, "999k"),
        (999_500, "1M"),  # not "1e+03k" nor "1000k"
        (1_234_567, "1.23M"),
        (4_100_000_000, "4.1B"),
        (-2500, "-2.5k"),
        (None, "n/a"),
        (math.nan, "n/a"),
    ],
)
def test_token_counts(value: float | None, text: str) -> None:
    assert fmt.tokens(value) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.32, "0.32 s"),
        (0.996, "1.0 s"),
        (3.24, "3.2 s"),
        (9.96, "10 s"),
        (41.2, "41 s"),
        (59.6, "1 min 0 s"),
        (341, "5 min 41 s"),
        (3599.6, "1 h 0 min"),
        (7500, "2 h 5 min"),
        (None, "n/a"),
    ],
)
def test_durations(seconds: float | None, text: str) -> None:
    assert fmt.duration(seconds) == text


def test_a_negative_duration_is_an_error() -> None:
    with pytest.raises(ValueError, match="negative duration"):
        fmt.duration(-1.0)


def test_losses_p_values_shares_and_other_numbers() -> None:
    assert fmt.loss(3.14159) == "3.142"
    assert fmt.loss(0.0123, signed=True) == "+0.012"
    assert fmt.loss(-0.0123, signed=True) == "-0.012"
    assert fmt.loss(None) == "n/a" and fmt.loss(math.nan, signed=True) == "n/a"
    assert fmt.p_value(0.0449) == "0.045" and fmt.p_value(0.5) == "0.5"
    assert fmt.p_value(5e-5) == "<1e-4" and fmt.p_value(None) == "n/a"
    assert fmt.percent(0.1234) == "12.3%" and fmt.percent(1.0) == "100.0%"
    assert fmt.count(3.0) == "3" and fmt.count(1_234_567) == "1,234,567"
    assert fmt.number(269_952.0) == "269,952"  # a whole float is a count, not "269952.000"
    assert fmt.number(3.0) == "3.000" and fmt.number(0.51234) == "0.512"


finite = {"allow_nan": False, "allow_infinity": False}


@given(st.floats(min_value=-1e14, max_value=1e14, **finite) | st.integers(-(10**14), 10**14))
def test_token_counts_parse_back_within_three_significant_digits(value: float) -> None:
    text = fmt.tokens(value)
    assert TOKENS.fullmatch(text), text  # at most 3 digits: never a raw 269952 to count
    parsed = parse_tokens(text)
    if abs(value) < 999.5:
        assert parsed == round(value)  # small counts are whole and exact
    else:
        assert abs(parsed - value) <= 0.005 * abs(value) * (1 + 1e-9)


@given(st.floats(min_value=0, max_value=1e12, **finite), st.floats(0, 1e12, **finite))
def test_token_counts_keep_their_order(a: float, b: float) -> None:
    low, high = sorted((a, b))
    assert parse_tokens(fmt.tokens(low)) <= parse_tokens(fmt.tokens(high))


@given(st.floats(min_value=0, max_value=1e7, **finite))
def test_durations_parse_back_within_their_precision(seconds: float) -> None:
    text = fmt.duration(seconds)
    parsed = parse_duration(text)
    # 0.01 s below 1 s, 0.1 s below 10 s, whole seconds below an hour, whole minutes above.
    step = next(
        step for step, below in ((0.01, 1), (0.1, 10), (1, 3600), (60, math.inf)) if parsed < below
    )
    assert abs(parsed - seconds) <= step / 2 + 1e-9 * seconds, text
    if " min " in text or " h " in text:
        assert int(text.split()[-2]) < 60  # 5 min 41 s, never 5 min 60 s


@given(st.floats(min_value=-1e6, max_value=1e6, **finite), st.booleans())
def test_losses_parse_back_within_half_a_thousandth(value: float, signed: bool) -> None:
    text = fmt.loss(value, signed)
    assert re.fullmatch(r"[-+]\d+\.\d{3}" if signed else r"-?\d+\.\d{3}", text), text
    assert abs(float(text) - value) <= 0.0005 + 1e-12 * abs(value)


@given(st.floats(min_value=0, max_value=1, **finite))
def test_shares_parse_back_within_half_a_tenth_of_a_percent(share: float) -> None:
    text = fmt.percent(share)
    assert re.fullmatch(r"\d{1,3}\.\d%", text), text
    assert abs(float(text[:-1]) / 100 - share) <= 0.0005 + 1e-12


@given(st.floats(min_value=0, max_value=1, **finite))
def test_p_values_keep_two_significant_digits(p: float) -> None:
    text = fmt.p_value(p)
    if p < 1e-4:
        assert text == "<1e-4"
    else:
        assert abs(float(text) - p) <= 0.05 * p + 1e-15


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0 FLOP"),
        (950, "950 FLOP"),
        (999.6, "1 kFLOP"),
        (25_800, "25.8 kFLOP"),
        (4.5e15, "4.5 PFLOP"),
        (1.2345e15, "1.23 PFLOP"),
        (999.6e15, "1 EFLOP"),  # not "1e+03 PFLOP"
        (2.5e9, "2.5 GFLOP"),  # SI's G, where token counts say B
        (1.234e24, "1.23e+24 FLOP"),
        (-2500, "-2.5 kFLOP"),
        (None, "n/a"),
        (math.nan, "n/a"),
    ],
)
def test_flop_counts(value: float | None, text: str) -> None:
    assert fmt.flops(value) == text


SI = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18, "Z": 1e21}


@given(st.floats(min_value=0, max_value=1e23, **finite))
def test_flop_counts_parse_back_within_three_significant_digits(value: float) -> None:
    text = fmt.flops(value)
    number, prefix = re.fullmatch(r"(\d{1,3}(?:\.\d{1,2})?) ([kMGTPEZ]?)FLOP", text).groups()
    parsed = float(number) * SI[prefix]
    if value < 999.5:
        assert parsed == round(value)
    else:
        assert abs(parsed - value) <= 0.005 * value * (1 + 1e-9)
