"""Planning packs: every cell once, finished packs kept, new cells only in new packs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curriculab.training.packs import Pack, pack_name, plan_packs, recorded_pack

GRID = [f"r{r}/s{s}/seed{seed}" for seed in range(3) for s in range(2) for r in range(3)]


def _finish(records: dict, pack: Pack) -> None:
    for cell in pack.cells:
        records[cell] = pack.cells


def test_every_cell_is_in_exactly_one_pack_of_at_most_size() -> None:
    for size in (1, 4, 7, 18, 100):
        packs = plan_packs(GRID, size, lambda cell: None)
        cells = [c for p in packs for c in p.cells]
        assert sorted(cells) == sorted(GRID)
        assert all(1 <= len(p.cells) <= size for p in packs)
        assert len(packs) == -(-len(GRID) // size)
        assert len({p.name for p in packs}) == len(packs)


def test_finished_packs_are_kept_and_new_cells_get_new_packs() -> None:
    records: dict = {}
    first = plan_packs(GRID, 4, records.get)
    for pack in first:
        _finish(records, pack)
    new_seed = [f"r{r}/s{s}/seed3" for s in range(2) for r in range(3)]
    again = plan_packs(GRID + new_seed, 4, records.get)
    assert set(first) <= set(again)
    fresh = [p for p in again if p not in first]
    assert sorted(c for p in fresh for c in p.cells) == sorted(new_seed)


def test_a_pack_with_a_lost_member_is_planned_again_as_it_was() -> None:
    """Its cells are planned afresh and form the same pack again (Snakemake then reruns that
    one job, as an output of it is missing); no other pack changes."""
    records: dict = {}
    first = plan_packs(GRID, 4, records.get)
    for pack in first:
        _finish(records, pack)
    del records[first[1].cells[2]]  # e.g. its run directory was deleted
    again = plan_packs(GRID, 4, records.get)
    assert set(again) == set(first)
    records[first[0].cells[0]] = ("elsewhere",)  # a record naming other cells: not trusted
    assert first[0].cells in [p.cells for p in plan_packs(GRID, 4, records.get)]


def test_a_pack_running_elsewhere_keeps_its_name_when_others_finish() -> None:
    """A cluster job re-reads the workflow while other packs are done or half written: the
    plan it makes must name its own pack exactly as the plan that submitted it did."""
    records: dict = {}
    planned = plan_packs(GRID, 4, records.get)
    for done in (planned[3], planned[0], planned[-1]):
        _finish(records, done)
        records[planned[2].cells[0]] = planned[2].cells  # one member of a pack half written
        assert set(plan_packs(GRID, 4, records.get)) == set(planned)


def test_records_that_disagree_are_not_trusted() -> None:
    a, b = ("x", "y"), ("y", "z")
    records = {"x": a, "y": b, "z": b}
    packs = plan_packs(["x", "y", "z"], 2, records.get)
    assert Pack(pack_name(b), b) in packs
    assert [p.cells for p in packs if p.cells != b] == [("x",)]


def test_recorded_pack_reads_metrics(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics.json"
    assert recorded_pack(metrics) is None
    metrics.write_text(json.dumps({"loss": 1.0}))
    assert recorded_pack(metrics) is None
    metrics.write_text(json.dumps({"pack": {"name": "p1", "cells": ["a", "b"]}}))
    assert recorded_pack(metrics) == ("a", "b")


def test_pack_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        plan_packs(GRID, 0, lambda cell: None)
