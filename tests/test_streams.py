"""Streams: each schedule is a permutation of the available blocks, ordered as it promises."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from curriculab.io import read_json, sha256_file
from curriculab.streams.build import (
    StreamError,
    available_blocks,
    build_order,
    read_stream,
    write_stream,
)
from curriculab.streams.schedules import SCHEDULES

BLOCKS = {"d1": 300, "d2": 1000}


def _pairs(names, order) -> list[tuple[str, int]]:
    return sorted((names[d], int(b)) for d, b in zip(order.domains, order.blocks, strict=True))


@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
def test_every_schedule_uses_each_available_block_once(schedule: str) -> None:
    names, order = build_order(BLOCKS, "d1", 0.2, schedule, seed=3)
    available = available_blocks(BLOCKS, "d1", 0.2, seed=3)
    expected = sorted((name, int(b)) for name, blocks in available.items() for b in blocks)
    assert _pairs(names, order) == expected
    assert len(available["d1"]) == 200 and len(available["d2"]) == 1000


def test_d1_last_and_first_place_the_target_block_run() -> None:
    names, last = build_order(BLOCKS, "d1", 0.1, "d1_last", seed=0)
    target = names.index("d1")
    assert (last.domains[-100:] == target).all() and (last.domains[:-100] != target).all()
    _, first = build_order(BLOCKS, "d1", 0.1, "d1_first", seed=0)
    assert (first.domains[:100] == target).all() and (first.domains[100:] != target).all()


def test_shuffled_spreads_the_target_over_training() -> None:
    names, order = build_order(BLOCKS, "d1", 0.3, "shuffled", seed=0)
    share = [(half == names.index("d1")).mean() for half in np.array_split(order.domains, 4)]
    assert max(share) - min(share) < 0.1


def test_subsample_is_paired_by_seed_and_nested_across_ratios() -> None:
    small = available_blocks(BLOCKS, "d1", 0.05, seed=1)["d1"]
    large = available_blocks(BLOCKS, "d1", 0.2, seed=1)["d1"]
    assert set(small) < set(large)
    other_seed = available_blocks(BLOCKS, "d1", 0.2, seed=2)["d1"]
    assert set(other_seed) != set(large)
    # Same seed, different schedules: same D1 data, different orders.
    names, a = build_order(BLOCKS, "d1", 0.2, "shuffled", seed=1)
    _, b = build_order(BLOCKS, "d1", 0.2, "d1_last", seed=1)
    assert _pairs(names, a) == _pairs(names, b)


def test_seeds_change_the_order_and_repeats_do_not() -> None:
    _, a = build_order(BLOCKS, "d1", 0.2, "shuffled", seed=0)
    _, again = build_order(BLOCKS, "d1", 0.2, "shuffled", seed=0)
    _, b = build_order(BLOCKS, "d1", 0.2, "shuffled", seed=1)
    assert np.array_equal(a.blocks, again.blocks) and np.array_equal(a.domains, again.domains)
    assert not np.array_equal(a.blocks, b.blocks)


def test_ratio_beyond_the_available_target_is_an_error() -> None:
    with pytest.raises(StreamError, match=r"needs 500 train blocks of 'd1'.*only 300"):
        available_blocks(BLOCKS, "d1", 0.5, seed=0)


def test_written_stream_round_trips_and_is_reproducible(tmp_path: Path, tiny_data) -> None:
    manifests = {n: read_json(tiny_data[n] / "manifest.json") for n in ("cooking", "history")}
    for name in ("a", "b"):
        write_stream(
            manifests,
            "cooking",
            0.3,
            "d1_last",
            0,
            tmp_path / f"{name}.arrow",
            tmp_path / f"{name}.json",
        )
    assert sha256_file(tmp_path / "a.arrow") == sha256_file(tmp_path / "b.arrow")
    names, domains, blocks = read_stream(tmp_path / "a.arrow")
    assert names == ["cooking", "history"]
    summary = read_json(tmp_path / "a.json")
    assert summary["n_sequences"] == len(blocks) == len(domains)
    assert summary["target_share_by_tenth"][-1] == 1.0 and summary["target_share_by_tenth"][0] == 0
