"""Shared by several test files (moved out of them so that no test imports another)."""

from __future__ import annotations

import numpy as np
import polars as pl

DOMAINS = ["a", "b", "c"]


RATIOS = {"0.1": 0.1, "0.3": 0.3}


ARMS = ("constant", "wsd")


# What concentrating each domain does to every domain's final loss (nats/token). Under UTILITY
# the objective rises by 0.5 * 0.4 + 0.3 * 0.2 = 0.26 for a, does not move for b, and falls by
# 0.5 * 0.2 + 0.2 * 0.3 = 0.16 for c.
EFFECTS = {
    "concentrate_a": {"a": 0.4, "b": 0.2},
    "concentrate_b": {},
    "concentrate_c": {"a": -0.2, "c": -0.3},
}


def k3_cells(
    effects: dict[str, dict[str, float]] = EFFECTS,
    seeds: int = 5,
    noise: float = 0.01,
    rng: np.random.Generator | None = None,
) -> pl.DataFrame:
    """Final losses of every domain: per (ratio, arm, seed) a base shared by every schedule
    (seeds differ a lot; pairing removes it), plus each schedule's effect and cell noise. The
    target is a: d1_test_loss is its loss."""
    rng = rng or np.random.default_rng(0)
    rows = []
    for ratio, value in RATIOS.items():
        for arm in ARMS:
            for seed in range(seeds):
                base = {d: 3.0 + rng.normal(0, 0.3) for d in DOMAINS}
                for schedule in ("shuffled", *effects):
                    shift = effects.get(schedule, {})
                    losses = {
                        f"test_loss_{d}": base[d] + shift.get(d, 0.0) + rng.normal(0, noise)
                        for d in DOMAINS
                    }
                    rows.append(
                        {"ratio": ratio, "ratio_value": value, "schedule": schedule, "arm": arm,
                         "seed": seed, "d1_test_loss": losses["test_loss_a"],
                         "d2_test_loss": (losses["test_loss_b"] + losses["test_loss_c"]) / 2,
                         **losses}
                    )  # fmt: skip
    return pl.DataFrame(rows)
