"""Packs: several cells trained by one process, serially or batched, each as if alone."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest
import torch
from safetensors.torch import load_file

from curriculab.config import train_config
from curriculab.io import read_json
from curriculab.streams.schedules import BudgetSpec
from curriculab.streams.stream_file import write_stream
from curriculab.training.branch import Candidate, branch_step, plan_branches
from curriculab.training.loop import train_cell, train_pack
from curriculab.training.run import CellJob
from tests.support.helpers import TINY_CONFIG, cell_inputs
from tests.support.tolerances import LOSS_TOLERANCE

CFG = train_config(TINY_CONFIG["train"])
DOMAINS = ("cooking", "history")
WEIGHT_TOLERANCE = 1e-3  # largest absolute difference of any weight


def _job(root: Path, tiny_data, name: str, schedule: str, ratio: float, seed: int, cfg) -> CellJob:
    """A cell with its own stream (schedule, ratio and seed), settings and output directory."""
    manifests = {n: read_json(tiny_data[n] / "manifest.json") for n in DOMAINS}
    stream = root / f"{name}.arrow"
    spec = TINY_CONFIG["grid"]["schedules"][schedule]
    summary = root / f"{name}.json"
    write_stream(manifests, "cooking", ratio, schedule, spec, seed, BudgetSpec(), stream, summary)
    inputs = cell_inputs(tiny_data, stream)
    return CellJob(name, inputs, cfg, seed, root / name, root / f"{name}.log",
                   read_json(summary)["window_start"])  # fmt: skip


@pytest.fixture(scope="module")
def cells(tmp_path_factory, tiny_data) -> list[CellJob]:
    """Three cells that differ in everything a pack must keep apart: stream (schedule and
    ratio, hence also the number of steps), seed, and learning-rate settings."""
    root = tmp_path_factory.mktemp("cells")
    wsd = replace(CFG, lr_schedule="wsd", decay_start="window", lr=0.02)
    return [
        _job(root, tiny_data, "a", "d1_last", 0.3, 0, CFG),
        _job(root, tiny_data, "b", "late", 0.3, 1, wsd),
        _job(root, tiny_data, "c", "shuffled", 0.1, 2, CFG),
    ]


@pytest.fixture(scope="module")
def alone(cells, tmp_path_factory) -> list[dict]:
    """Each cell trained by itself (what a job of its own computes), in <root>/<cell>/."""
    root = tmp_path_factory.mktemp("alone")
    return [
        train_cell(replace(j, out_dir=root / j.cell), "micro", 1, j.log.open("w"))
        | {"out_dir": str(root / j.cell)}
        for j in cells
    ]  # fmt: skip


@pytest.fixture(scope="module")
def batched(cells, tmp_path_factory) -> tuple[Path, list[dict]]:
    root = tmp_path_factory.mktemp("batched")
    return root, _packed(cells, root, "batched")


def _packed(cells: list[CellJob], root: Path, packing: str) -> list[dict]:
    jobs = [replace(j, out_dir=root / j.cell, log=root / f"{j.cell}.log") for j in cells]
    pack = {"name": "ptest", "cells": [j.cell for j in jobs]}
    return train_pack(jobs, "micro", pack, packing=packing)


def test_cells_differ_in_steps_and_results(alone) -> None:
    """The three cells are different runs (else the comparisons below could not fail)."""
    assert len({m["steps"] for m in alone}) == 2
    finals = [m["final_test"]["cooking"]["loss"] for m in alone]
    gaps = [abs(a - b) for a, b in zip(finals, finals[1:] + finals[:1], strict=True)]
    assert min(gaps) > 100 * LOSS_TOLERANCE


def test_serial_pack_computes_exactly_what_separate_jobs_do(cells, alone, tmp_path) -> None:
    packed = _packed(cells, tmp_path, "serial")
    for job, one, together in zip(cells, alone, packed, strict=True):
        assert together["final_test"] == one["final_test"]
        assert together["final_curve_loss"] == one["final_curve_loss"]
        assert together["pack"] == {"name": "ptest", "cells": ["a", "b", "c"], "packing": "serial"}
        assert (tmp_path / job.cell / "model" / "model.safetensors").exists()


def _weights(directory: Path) -> dict:
    return load_file(directory / "model" / "model.safetensors")


def test_batched_pack_matches_each_cell_alone(cells, alone, batched) -> None:
    """Each batched cell equals its own unbatched run within the stated tolerance, and is far
    from every other cell's: no stream, seed, learning rate or optimiser state leaks."""
    root, packed = batched
    for k, (job, together) in enumerate(zip(cells, packed, strict=True)):
        assert together["steps"] == alone[k]["steps"]
        assert together["tokens_seen"] == alone[k]["tokens_seen"]
        for other, one in enumerate(alone):
            gap = max(
                abs(together["final_test"][d]["loss"] - one["final_test"][d]["loss"])
                for d in DOMAINS
            )
            if other == k:
                assert gap <= LOSS_TOLERANCE, (job.cell, gap)
            else:
                assert gap > 10 * LOSS_TOLERANCE, (job.cell, cells[other].cell, gap)
        curve = pl.read_parquet(root / job.cell / "curve.parquet")
        assert curve["step"].to_list() == sorted(curve["step"].to_list())
        assert together["pack"]["packing"] == "batched"


def test_batched_weights_equal_unbatched_weights(cells, alone, batched) -> None:
    root, _ = batched
    for job, one in zip(cells, alone, strict=True):
        mine = _weights(root / job.cell)
        theirs = _weights(Path(one["out_dir"]))
        assert mine.keys() == theirs.keys()
        gap = max(float((mine[n] - theirs[n]).abs().max()) for n in mine)
        assert gap <= WEIGHT_TOLERANCE, (job.cell, gap)


def test_cells_sharing_a_prefix_compute_it_once_and_equal_training_from_scratch(
    tiny_data, tmp_path
) -> None:
    """Two learning-rate arms on one stream train the same floats until the WSD cooldown: the
    second branches off the first there and still ends bitwise where training alone ends. A
    third cell reads the same stream under another name with the second's learning rate (a
    matched control: its window start differs but its learning rate does not): it branches
    off the same snapshot, which its first user must have left as it was."""
    constant = replace(CFG, lr_schedule="constant")
    wsd = replace(CFG, lr_schedule="wsd", decay_fraction=0.4)
    first = _job(tmp_path, tiny_data, "constant", "late", 0.3, 0, constant)
    second = replace(first, cell="wsd", cfg=wsd, out_dir=tmp_path / "wsd")
    second = replace(second, log=tmp_path / "wsd.log")
    linked = tmp_path / "linked.arrow"
    linked.write_bytes(first.inputs.stream.read_bytes())
    third = replace(second, cell="wsd_again", inputs=replace(second.inputs, stream=linked))
    third = replace(third, window_start=0.5)  # ignored by a fixed decay: the same curve
    packed = _packed([first, second, third], tmp_path / "packed", "serial")
    assert packed[0]["inherited"] is None
    branch = packed[1]["inherited"]
    assert branch["source"] == "cell" and branch["from"] == "constant"
    assert 0 < branch["step"] < packed[1]["steps"]
    assert packed[2]["inherited"] == branch  # the same snapshot, a second time
    assert packed[2]["final_test"] == packed[1]["final_test"]
    for job, together in zip((first, second), packed, strict=False):
        out = tmp_path / "alone" / job.cell
        one = train_cell(replace(job, out_dir=out), "micro", 1, job.log.open("w"))
        assert together["final_test"] == one["final_test"]
        assert pl.read_parquet(tmp_path / "packed" / job.cell / "curve.parquet").equals(
            pl.read_parquet(tmp_path / "alone" / job.cell / "curve.parquet")
        )
        mine, theirs = (_weights(tmp_path / d / job.cell) for d in ("packed", "alone"))
        assert all(torch.equal(mine[n], theirs[n]) for n in mine)


def test_only_cells_with_the_same_stream_seed_and_settings_branch() -> None:
    constant, wsd = replace(CFG, lr_schedule="constant"), replace(CFG, lr_schedule="wsd")
    base = Candidate("s.arrow", 0, constant, None, 800)
    steps = 100  # 800 sequences / batch 8
    assert branch_step(base, replace(base, cfg=wsd)) == steps - round(wsd.decay_fraction * steps)
    assert branch_step(base, replace(base, seed=1, cfg=wsd)) == 0
    assert branch_step(base, replace(base, stream="t.arrow", cfg=wsd)) == 0
    assert branch_step(base, replace(base, cfg=replace(wsd, weight_decay=0.5))) == 0
    assert branch_step(base, replace(base, cfg=replace(constant, lr=1.0))) == 0  # warmup differs
    assert branch_step(base, base) == steps - 1  # identical: all but the last step shared
    cells = [base, replace(base, seed=1), replace(base, cfg=wsd), replace(base, seed=1, cfg=wsd)]
    assert plan_branches(cells) == {2: (0, 80), 3: (1, 80)}
