"""Learning-rate arms: the WSD decay placed at the schedule's D1 window, and exposure."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from curriculab.config import train_config
from curriculab.streams.build import build_order
from curriculab.streams.schedules import final_window_start
from curriculab.training.lr import (
    arm_description,
    decay_start_step,
    exposure,
    lr_at,
    lr_by_bin,
    lr_per_position,
)
from tests.support.helpers import TINY_CONFIG

CFG = replace(
    train_config(TINY_CONFIG["train"]), lr_schedule="wsd", warmup_fraction=0.0, decay_fraction=0.2
)


def test_window_decay_starts_where_the_d1_window_starts() -> None:
    window = replace(CFG, decay_start="window")
    assert decay_start_step(100, window, 0.65) == 65
    assert decay_start_step(100, CFG, 0.65) == 80  # fixed: the final decay_fraction
    assert decay_start_step(100, window, None) == 80  # no window: falls back to fixed
    rates = [lr_at(step, 100, window, 0.65) for step in range(100)]
    assert rates[64] == pytest.approx(CFG.lr) and rates[65] < CFG.lr
    assert rates[-1] == pytest.approx(CFG.min_lr_fraction * CFG.lr)
    assert "final window" in arm_description(window)


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ({"family": "shuffled"}, None),
        ({"family": "end_window", "window": 0.25, "d1_factor": 2}, 0.75),
        ({"family": "sequential", "order": ["b", "a"]}, 1000 / 1100),
        ({"family": "sequential", "order": ["a", "b"]}, None),  # D1 first: no final window
        ({"family": "ramp", "start": 0.0}, None),  # smooth: no window
        ({"family": "placement", "a": 8, "b": 1}, None),
    ],
)
def test_streams_know_where_their_final_d1_window_starts(schedule, expected) -> None:
    _, order = build_order({"a": 500, "b": 1000}, "a", 0.1, "s", schedule, seed=0)
    if expected is None:
        assert order.window_start is None
    else:
        assert order.window_start == pytest.approx(expected)
        # the realised stream agrees: D1's share jumps at the window start
        start = round(expected * len(order.domains))
        before = (order.domains[:start] == 0).mean()
        after = (order.domains[start:] == 0).mean()
        assert after > before


def test_final_window_start_ignores_profiles_with_many_phases() -> None:
    from curriculab.streams.schedules import Profile

    edges = np.linspace(0, 1, 21)
    shares = np.vstack([np.linspace(0.1, 0.9, 20), 1 - np.linspace(0.1, 0.9, 20)])
    assert final_window_start(Profile(edges, shares), 0) is None


def test_exposure_under_a_constant_rate_is_the_token_share() -> None:
    constant = replace(CFG, lr_schedule="constant")
    domains = np.random.default_rng(0).integers(0, 2, 1000)
    lrs = lr_per_position(1000, 16, constant, None)
    got = exposure(domains, ["a", "b"], lrs, constant.lr)
    for k, name in enumerate("ab"):
        share = (domains == k).mean()
        assert got[name]["lr_weighted_share"] == pytest.approx(share)
        assert got[name]["token_share"] == pytest.approx(share)
        assert got[name]["mean_lr_fraction"] == pytest.approx(1.0)


def test_exposure_of_late_data_under_a_decay() -> None:
    """The last 10% of positions, under a WSD decay over the final 20%: their mean learning
    rate is the mean of the decay's second half, computed independently here."""
    n, batch = 1000, 10
    domains = np.zeros(n, dtype=np.int64)
    domains[900:] = 1
    lrs = lr_per_position(n, batch, CFG, None)
    assert len(lrs) == n and lrs[0] == pytest.approx(CFG.lr)
    got = exposure(domains, ["d2", "d1"], lrs, CFG.lr)
    steps = np.arange(90, 100)  # the steps that train the last 100 positions
    floor = CFG.min_lr_fraction * CFG.lr
    expected = CFG.lr - (CFG.lr - floor) * (steps + 1 - 80) / 20
    assert got["d1"]["mean_lr"] == pytest.approx(expected.mean())
    assert got["d1"]["token_share"] == pytest.approx(0.1)
    assert got["d1"]["lr_weighted_share"] < got["d1"]["token_share"]
    assert lr_by_bin(lrs, CFG.lr, 10)[-1] == pytest.approx(expected.mean() / CFG.lr)
