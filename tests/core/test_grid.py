"""The grid of a study (curriculab.grid), from real configs through the real schema: which
cells, streams and packs exist, and the paths they write."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from curriculab.config import load_study
from curriculab.grid import RUN_DIR, Grid, cell_files, cell_id, cell_specs, pack_order
from curriculab.training.packs import plan_packs
from tests.support.design import design_config
from tests.support.helpers import REPO, SCHEMA, TINY_CONFIG


def _study(config):
    return load_study(copy.deepcopy(config), SCHEMA)


def _default():
    return _study(yaml.safe_load((REPO / "config.yaml").read_text()))


def test_cells_are_ratios_by_schedules_by_arms_by_seeds_plus_the_matched_controls() -> None:
    study = _default()
    grid = Grid.of(study)
    plain = len(study.ratio_labels) * len(study.schedules) * len(study.arms) * len(study.seeds)
    controls = sum(
        len(study.ratio_labels) * len(c.arms) * len(study.seeds) for c in study.controls.values()
    )
    assert study.controls, "the default study has matched controls (else this tests less)"
    assert len(grid.cells) == plain + controls
    keys = [(c["ratio"], c["schedule"], c["arm"], c["seed"]) for c in grid.cells]
    assert len(set(keys)) == len(keys)
    assert {c["schedule"] for c in grid.cells} == {*study.schedules, *study.controls}


def test_every_cell_has_its_stream_and_every_stream_a_cell() -> None:
    grid = Grid.of(_default())
    streams = {(s["ratio"], s["schedule"], s["seed"]) for s in grid.streams}
    used = {(c["ratio"], c["schedule"], c["seed"]) for c in grid.cells}
    assert streams == used
    assert len(streams) == len(grid.streams)


def test_the_pack_order_holds_every_grid_cell_once_arms_innermost() -> None:
    study = _default()
    grid = Grid.of(study)
    order = pack_order(study)
    assert sorted(order) == sorted(cell_id(c) for c in grid.cells)
    first = [grid.cell_by_id[c] for c in order[: len(study.arms)]]
    assert {c["arm"] for c in first} == set(study.arms)  # one stream's arms side by side
    assert len({(c["ratio"], c["schedule"], c["seed"]) for c in first}) == 1
    assert first[0]["schedule"] == study.baseline
    packs = plan_packs(order, 8, lambda cell: None)
    assert [c for p in packs for c in p.cells] == order  # packs partition the order


def test_paths_round_trip_through_the_cell_id() -> None:
    grid = Grid.of(_study(TINY_CONFIG))
    for cell in grid.cells:
        ident = cell_id(cell)
        assert grid.cell_by_id[ident] == cell
        assert RUN_DIR.format(**cell) == f"results/training/{ident}"
    one = grid.cells[0]
    assert cell_files([one], "metrics.json") == [f"results/training/{cell_id(one)}/metrics.json"]
    assert cell_specs([one])[0][:4] == (one["ratio"], one["schedule"], one["arm"], one["seed"])


def test_optional_cells_exist_exactly_when_their_key_does() -> None:
    tiny = Grid.of(_study(TINY_CONFIG))
    assert tiny.design_cells == {} and tiny.ladder_cells == {} and tiny.selected == []
    assert set(tiny.cell_by_id) == {cell_id(c) for c in tiny.cells}
    study = _study(design_config())
    designed = Grid.of(study)
    assert designed.design_cells
    extra = [c for g in designed.separate_groups() for c in g]
    assert extra and all(cell_id(c) in designed.cell_by_id for c in extra)
    assert not {cell_id(c) for c in extra} & {cell_id(c) for c in designed.cells}
    assert all(c["ratio"] == "0.3" for c in extra)


def test_every_example_study_gives_a_grid_whose_ids_are_unique() -> None:
    for path in sorted((REPO / "studies").glob("*.yaml")):
        grid = Grid.of(_study(yaml.safe_load(Path(path).read_text())))
        every = grid.cells + [c for g in grid.separate_groups() for c in g]
        assert len(grid.cell_by_id) == len(every), path.name
