"""Shared by several test files (moved out of them so that no test imports another)."""

from __future__ import annotations

import copy
from typing import Any

from tests.support.helpers import TINY_CONFIG

WINDOW = {"family": "end_window", "window": 0.2, "d1_share": 0.3}


PARAMETERS = {"window": [0.05, 0.5], "d1_share": [0.0, 1.0]}


def design_config(**design: Any) -> dict[str, Any]:
    config = copy.deepcopy(TINY_CONFIG)
    config["grid"]["schedules"] |= {
        "win": dict(WINDOW),
        "win_long": {**WINDOW, "window": 0.4},  # in the box: a free observation
        "win_out": {**WINDOW, "window": 0.9},  # outside the box
    }
    config["design"] = {"schedule": "win", "parameters": PARAMETERS, "ratio": 0.3} | design
    return config
