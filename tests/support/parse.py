"""Shared by several test files (moved out of them so that no test imports another)."""

from __future__ import annotations

import re

SUFFIX = {"": 1.0, "k": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}


TOKENS = re.compile(r"-?\d{1,3}(?:\.\d{1,2})?[kMBT]?")


def parse_tokens(text: str) -> float:
    """Inverse of fmt.tokens: "1.23M" -> 1_230_000."""
    assert TOKENS.fullmatch(text), text
    number, suffix = re.fullmatch(r"(-?[\d.]+)([kMBT]?)", text).groups()
    return float(number) * SUFFIX[suffix]


def parse_duration(text: str) -> float:
    """Inverse of fmt.duration: "5 min 41 s" -> 341.0."""
    units = {"h": 3600.0, "min": 60.0, "s": 1.0}
    parts = re.fullmatch(r"(?:(\d+) h (\d+) min)|(?:(\d+) min (\d+) s)|(?:([\d.]+) s)", text)
    assert parts, text
    hours, h_minutes, minutes, seconds, plain = parts.groups()
    if hours is not None:
        return int(hours) * units["h"] + int(h_minutes) * units["min"]
    if minutes is not None:
        return int(minutes) * units["min"] + int(seconds)
    return float(plain)
