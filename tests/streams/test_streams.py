"""Streams: every schedule family does what it promises, under both budgets, for K >= 2."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curriculab.io import read_json, sha256_file
from curriculab.streams.build import StreamError, available_blocks, build_order
from curriculab.streams.schedules import BudgetSpec, ScheduleError
from curriculab.streams.stream_file import read_stream, write_stream

BLOCKS = {"d1": 3000, "d2": 10000}
SPECS = {
    "shuffled": {"family": "shuffled"},
    "d1_last": {"family": "sequential", "order": ["d2", "d1"]},
    "d1_first": {"family": "sequential", "order": ["d1", "d2"]},
    "window": {"family": "end_window", "window": 0.2, "d1_factor": 3},
    "ramp": {"family": "ramp", "start": 0.0, "end": None, "shape": "cosine"},
    "late": {"family": "placement", "a": 8, "b": 1},
    "stages": {
        "family": "stages",
        "phases": [
            # Under fixed_data the phases must add up to D1's natural share, 1000 / 11000.
            {"fraction": 0.5, "shares": {"d1": 0.05, "d2": 0.95}},
            {"fraction": 0.5, "shares": {"d1": 0.1318182, "d2": 0.8681818}},
        ],
    },
}


def _order(spec, ratio=0.1, seed=0, blocks=BLOCKS, budget=None, name="s"):
    return build_order(blocks, "d1", ratio, name, spec, seed, budget or BudgetSpec())


def _pairs(names, order) -> list[tuple[str, int]]:
    return sorted((names[d], int(b)) for d, b in zip(order.domains, order.blocks, strict=True))


def _d1_positions(names, order) -> np.ndarray:
    return np.flatnonzero(order.domains == names.index("d1"))


@pytest.mark.parametrize("name", sorted(SPECS))
def test_fixed_data_uses_each_available_block_once(name: str) -> None:
    names, order = _order(SPECS[name])
    available = available_blocks(BLOCKS, "d1", 0.1, seed=0)
    expected = sorted((n, int(b)) for n, blocks in available.items() for b in blocks)
    assert _pairs(names, order) == expected
    assert (order.epochs == 0).all()


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(5, 400), min_size=2, max_size=4),
    ratio=st.floats(0.2, 1.0),
    seed=st.integers(0, 2**31),
    family=st.sampled_from(["shuffled", "sequential", "window", "ramp", "placement"]),
    a=st.floats(0.2, 20.0),
)
def test_any_family_on_any_domains_is_a_permutation(sizes, ratio, seed, family, a) -> None:
    blocks = {f"d{i + 1}": n for i, n in enumerate(sizes)}
    blocks["d1"] = 1000  # enough D1 for every ratio
    specs = {
        "shuffled": {"family": "shuffled"},
        "sequential": {"family": "sequential", "order": sorted(blocks)[::-1]},
        "window": {"family": "end_window", "window": 0.3, "d1_factor": 1.0},
        "ramp": {"family": "ramp", "start": 0.0},
        "placement": {"family": "placement", "a": a, "b": 1.0},
    }
    names, order = _order(specs[family], ratio, seed, blocks)
    available = available_blocks(blocks, "d1", ratio, seed)
    assert _pairs(names, order) == sorted((n, int(b)) for n, bs in available.items() for b in bs)


def test_sequential_and_end_window_place_the_target() -> None:
    names, last = _order(SPECS["d1_last"])
    n1 = len(_d1_positions(names, last))
    assert (_d1_positions(names, last) >= len(last.domains) - n1).all()
    _, first = _order(SPECS["d1_first"])
    assert (_d1_positions(names, first) < n1).all()


@pytest.mark.parametrize(("window", "share"), [(0.05, 0.3), (0.2, 0.5), (0.3, 0.25)])
def test_end_window_share_is_exact_within_one_block(window: float, share: float) -> None:
    spec = {"family": "end_window", "window": window, "d1_share": share}
    names, order = _order(spec, ratio=0.25)
    n = len(order.domains)
    tail = order.domains[n - round(window * n) :]
    assert abs((tail == names.index("d1")).sum() - share * window * n) <= 1


def test_end_window_that_needs_more_d1_than_exists_names_the_parameter() -> None:
    spec = {"family": "end_window", "window": 0.2, "d1_share": 0.9}
    with pytest.raises(ScheduleError, match=r"schedule 's', parameter 'd1_share': needs"):
        _order(spec, ratio=0.05)


def test_stages_honour_fractions_and_shares_within_one_block() -> None:
    spec = {
        "family": "stages",
        "phases": [
            {"fraction": 0.6, "shares": {"d1": 0.05, "d2": 0.95}},
            {"fraction": 0.3, "shares": {"d1": 0.3, "d2": 0.7}},
            {"fraction": 0.1, "shares": {"d1": 0.6, "d2": 0.4}},
        ],
    }
    budget = BudgetSpec("fixed_tokens", total_blocks=20000, max_epochs=None)
    names, order = _order(spec, ratio=0.3, budget=budget)
    edges = np.round(np.array([0, 0.6, 0.9, 1.0]) * 20000).astype(int)
    for (lo, hi), phase in zip(itertools.pairwise(edges), spec["phases"], strict=True):
        d1 = (order.domains[lo:hi] == names.index("d1")).sum()
        assert abs(d1 - phase["shares"]["d1"] * (hi - lo)) <= 1


def test_stages_that_do_not_fit_fixed_data_name_the_domain() -> None:
    spec = {"family": "stages", "phases": [{"fraction": 1.0, "shares": {"d1": 0.5, "d2": 0.5}}]}
    with pytest.raises(ScheduleError, match=r"schedule 's': domain 'd1' would get"):
        _order(spec)


def test_placement_uniform_passes_a_ks_test() -> None:
    names, order = _order({"family": "placement", "a": 1, "b": 1}, ratio=0.2, seed=0)
    where = np.sort(_d1_positions(names, order)) / len(order.domains)
    empirical = np.arange(1, len(where) + 1) / len(where)
    statistic = np.max(np.maximum(empirical - where, where - (empirical - 1 / len(where))))
    assert statistic < 1.36 / np.sqrt(len(where))  # Kolmogorov-Smirnov, alpha = 0.05, seed 0


def test_placement_late_puts_most_d1_in_the_last_half() -> None:
    names, order = _order(SPECS["late"], ratio=0.2)
    where = _d1_positions(names, order)
    assert (where >= len(order.domains) / 2).mean() >= 0.8


def test_ramp_rises_with_fixed_total() -> None:
    names, order = _order(SPECS["ramp"], ratio=0.2)
    tenths = np.array_split(order.domains == names.index("d1"), 10)
    shares = [t.mean() for t in tenths]
    assert shares[0] < 0.05 and shares[-1] > 0.25 and shares == sorted(shares)


def test_ramp_with_inconsistent_end_under_fixed_data_says_what_fits() -> None:
    with pytest.raises(ScheduleError, match=r"parameter 'end': .* use end: 0\.18"):
        _order({"family": "ramp", "start": 0.0, "end": 0.9}, ratio=0.1)


def test_fixed_tokens_repeats_within_the_epoch_cap() -> None:
    budget = BudgetSpec("fixed_tokens", total_blocks=30000, max_epochs=4)
    names, order = _order(SPECS["window"], ratio=0.1, budget=budget)
    assert len(order.domains) == 30000
    for k, name in enumerate(names):
        mine = order.epochs[order.domains == k]
        assert mine.max() < 4, name
        # An epoch finishes before the next begins: epochs never decrease along the stream.
        assert (np.diff(mine) >= 0).all()
        blocks = order.blocks[order.domains == k]
        first_epoch = blocks[mine == 0]
        assert len(np.unique(first_epoch)) == len(first_epoch)
    tight = BudgetSpec("fixed_tokens", total_blocks=30000, max_epochs=2)
    with pytest.raises(ScheduleError, match=r"domain 'd1' needs 2\.73 epochs .* max_epochs 2"):
        _order(SPECS["shuffled"], ratio=0.1, budget=tight)


def test_subsample_is_paired_by_seed_and_nested_across_ratios() -> None:
    small = available_blocks(BLOCKS, "d1", 0.05, seed=1)["d1"]
    large = available_blocks(BLOCKS, "d1", 0.2, seed=1)["d1"]
    assert set(small) < set(large)
    assert set(available_blocks(BLOCKS, "d1", 0.2, seed=2)["d1"]) != set(large)
    names, a = _order(SPECS["shuffled"], 0.2, seed=1)
    _, b = _order(SPECS["late"], 0.2, seed=1)
    assert _pairs(names, a) == _pairs(names, b)


def test_seeds_change_the_order_and_repeats_do_not() -> None:
    _, a = _order(SPECS["shuffled"], seed=0)
    _, again = _order(SPECS["shuffled"], seed=0)
    _, b = _order(SPECS["shuffled"], seed=1)
    assert np.array_equal(a.blocks, again.blocks) and np.array_equal(a.domains, again.domains)
    assert not np.array_equal(a.blocks, b.blocks)


def test_ratio_beyond_the_available_target_is_an_error() -> None:
    with pytest.raises(StreamError, match=r"needs 5000 train blocks of 'd1'.*only 3000"):
        available_blocks(BLOCKS, "d1", 0.5, seed=0)


def test_written_stream_round_trips_and_is_reproducible(tmp_path: Path, tiny_data) -> None:
    manifests = {n: read_json(tiny_data[n] / "manifest.json") for n in ("cooking", "history")}
    spec = {"family": "sequential", "order": ["history", "cooking"]}
    for name in ("a", "b"):
        write_stream(
            manifests,
            "cooking",
            0.3,
            "d1_last",
            spec,
            0,
            BudgetSpec(),
            tmp_path / f"{name}.arrow",
            tmp_path / f"{name}.json",
        )
    assert sha256_file(tmp_path / "a.arrow") == sha256_file(tmp_path / "b.arrow")
    names, domains, blocks = read_stream(tmp_path / "a.arrow")
    assert names == ["cooking", "history"]
    summary = read_json(tmp_path / "a.json")
    assert summary["n_sequences"] == len(blocks) == len(domains)
    cooking = summary["domains"]["cooking"]
    assert cooking["share_by_tenth"][-1] == 1.0 and cooking["share_by_tenth"][0] == 0
    assert cooking["repeated_blocks"] == 0 and cooking["max_epoch"] == 0
    assert cooking["unique_tokens"] == cooking["blocks_used"] * manifests["cooking"]["seq_len"]
    assert len(summary["target_share_by_bin"]) == 50 and summary["target_share_by_bin"][-1] == 1


# --- prefix-stable streams of schedules on a trunk (streams.prefix) --------------------------

TRUNK_BLOCKS = {"cooking": 400, "history": 1000}
TRUNK_BUDGET = BudgetSpec("fixed_tokens", total_blocks=640, max_epochs=4, step_blocks=8)


@settings(max_examples=40, deadline=None)
@given(
    windows=st.lists(st.sampled_from([0.05, 0.1, 0.25, 0.3, 0.5, 0.9]), min_size=2, max_size=4),
    share=st.floats(0.0, 1.0),
    seed=st.integers(0, 1000),
    remove=st.sampled_from([None, "cooking", "history"]),
)
def test_every_branch_is_its_trunk_up_to_its_window(windows, share, seed, remove) -> None:
    """Whatever the windows, their mixtures and a removed domain: position by position, a
    branch is its trunk's order (domain, block and epoch) up to a whole step before its
    window, and its window follows the window's mixture."""
    from curriculab.streams.build import build_trunk_order

    _, trunk = build_trunk_order(TRUNK_BLOCKS, "cooking", 0.3, "t", None, seed, TRUNK_BUDGET)
    for window in windows:
        spec = {"family": "end_window", "window": window, "d1_share": share, "trunk": "t"}
        whole = {"cooking": share, "history": 1.0 - share}.get(remove) == 1.0  # nothing left
        if remove and not whole:
            spec["remove"] = remove
        _, order = build_order(TRUNK_BLOCKS, "cooking", 0.3, f"w{window}", spec, seed, TRUNK_BUDGET)
        p = order.branch_position
        assert p % TRUNK_BUDGET.step_blocks == 0 and abs(p / 640 - (1 - window)) <= 4 / 640
        for field in ("domains", "blocks", "epochs"):
            assert np.array_equal(getattr(order, field)[:p], getattr(trunk, field)[:p]), field
        d1 = float(np.mean(order.domains[p:] == 0))
        expected = {None: share, "cooking": 0.0, "history": 1.0}[spec.get("remove")]
        assert abs(d1 - expected) <= 1 / (640 - p)
        assert order.window_start == p / 640


def test_a_trunk_depends_on_its_seed_and_name_not_on_its_windows() -> None:
    from curriculab.streams.build import build_trunk_order

    def domains(trunk: str, seed: int) -> np.ndarray:
        return build_trunk_order(TRUNK_BLOCKS, "cooking", 0.3, trunk, None, seed, TRUNK_BUDGET)[
            1
        ].domains

    assert np.array_equal(domains("t", 0), domains("t", 0))
    assert not np.array_equal(domains("t", 0), domains("t", 1))
    assert not np.array_equal(domains("t", 0), domains("u", 0))
    shuffled = {"family": "shuffled", "trunk": "t"}
    _, order = build_order(TRUNK_BLOCKS, "cooking", 0.3, "s", shuffled, 0, TRUNK_BUDGET)
    assert np.array_equal(order.domains, domains("t", 0)) and order.branch_position is None


def test_a_branch_that_repeats_a_domain_too_often_names_the_schedule() -> None:
    spec = {"family": "end_window", "window": 0.5, "d1_share": 1.0, "trunk": "t"}
    budget = BudgetSpec("fixed_tokens", total_blocks=640, max_epochs=1, step_blocks=8)
    with pytest.raises(ScheduleError, match=r"schedule 'w': domain 'cooking' needs .* epochs"):
        build_order(TRUNK_BLOCKS, "cooking", 0.3, "w", spec, 0, budget)
