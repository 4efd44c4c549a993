"""Trunks and branches: a branched cell is the cell trained from step 0, or it is refused."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest
import torch
from safetensors.torch import load_file

from curriculab.config import train_config
from curriculab.io import read_json
from curriculab.streams.prefix import window_step
from curriculab.streams.schedules import BudgetSpec
from curriculab.streams.stream_file import write_stream, write_trunk_stream
from curriculab.training.checkpoint import TrainingError, read_checkpoint
from curriculab.training.inputs import CellInputs
from curriculab.training.loop import train_cell, train_pack
from curriculab.training.run import CellJob
from curriculab.training.trunk import train_trunk
from tests.support.helpers import TINY_CONFIG, cell_inputs
from tests.support.tolerances import LOSS_TOLERANCE

DOMAINS = ("cooking", "history")
CFG = replace(
    train_config(TINY_CONFIG["train"]), lr_schedule="wsd", decay_start="window", eval_points=5
)
BUDGET = BudgetSpec("fixed_tokens", total_blocks=96, max_epochs=8, step_blocks=CFG.batch_size)
WINDOW = {"family": "end_window", "window": 0.25, "d1_share": 0.6, "trunk": "main"}
BRANCH = window_step(WINDOW["window"], BUDGET.total_blocks, BUDGET.step_blocks)  # step 9 of 12


def _inputs(tiny_data, stream: Path) -> CellInputs:
    return cell_inputs(tiny_data, stream)


def _streams(root: Path, tiny_data, seed: int = 0, spec=WINDOW) -> tuple[Path, Path, float]:
    """(trunk stream, branch stream, the branch's window start) for one seed."""
    manifests = {n: read_json(tiny_data[n] / "manifest.json") for n in DOMAINS}
    root.mkdir(parents=True, exist_ok=True)
    trunk, branch = root / f"trunk{seed}.arrow", root / f"branch{seed}.arrow"
    write_trunk_stream(
        manifests, "cooking", 0.3, "main", None, seed, BUDGET, trunk, root / "t.json"
    )
    summary = write_stream(
        manifests, "cooking", 0.3, "window", spec, seed, BUDGET, branch, root / f"b{seed}.json"
    )
    return trunk, branch, summary["window_start"]


def _cell(tiny_data, stream: Path, window: float, out: Path, trunk: Path | None = None):
    with (out.parent / f"{out.name}.log").open("w") as log:
        job = CellJob(out.name, _inputs(tiny_data, stream), CFG, 0, out, None, window, trunk)
        return train_cell(job, "micro", 1, log)


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return load_file(out / "model" / "model.safetensors")


def _same_run(a: Path, b: Path, metrics_a: dict, metrics_b: dict) -> bool:
    """Bitwise the same final test, learning curve and weights."""
    curves = pl.read_parquet(a / "curve.parquet").equals(pl.read_parquet(b / "curve.parquet"))
    wa, wb = _weights(a), _weights(b)
    weights = all(torch.equal(wa[n], wb[n]) for n in wa)
    return metrics_a["final_test"] == metrics_b["final_test"] and curves and weights


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_data) -> dict:
    """The window cell trained from step 0, and its trunk trained in two segments (0 -> 5 and
    5 -> the branch point), as the workflow chains them."""
    root = tmp_path_factory.mktemp("trunk")
    trunk_stream, branch_stream, window = _streams(root / "streams", tiny_data)
    inputs = _inputs(tiny_data, trunk_stream)
    first, second = root / "step5.pt", root / f"step{BRANCH}.pt"
    segments = [
        train_trunk(inputs, "micro", CFG, 0, "trunk", None, 5, first),
        train_trunk(inputs, "micro", CFG, 0, "trunk", first, BRANCH, second),
    ]
    full = _cell(tiny_data, branch_stream, window, root / "full")
    return {"root": root, "branch_stream": branch_stream, "window": window, "trunk": second,
            "full": full, "segments": segments, "trunk_stream": trunk_stream}  # fmt: skip


def test_a_branched_cell_equals_the_cell_trained_from_step_0(runs, tiny_data) -> None:
    root = runs["root"]
    branched = _cell(tiny_data, runs["branch_stream"], runs["window"], root / "b", runs["trunk"])
    assert _same_run(root / "b", root / "full", branched, runs["full"])
    assert branched["tokens_seen"] == runs["full"]["tokens_seen"]
    inherited = branched["inherited"]
    assert inherited["source"] == "trunk" and inherited["step"] == BRANCH
    assert inherited["tokens"] == BRANCH * CFG.batch_size * 32  # seq_len 32
    assert runs["full"]["inherited"] is None


def test_segments_record_what_they_trained(runs) -> None:
    first, second = runs["segments"]
    assert (first["parent"], first["step"], second["parent"], second["step"]) == (0, 5, 5, BRANCH)
    assert first["tokens_trained"] + second["tokens_trained"] == second["tokens_seen"]


def test_the_equality_would_fail_with_another_optimiser_state(runs, tiny_data) -> None:
    """The test above has power: the same trunk with AdamW's second moments reset (the state a
    resume that kept only the weights would start from) ends elsewhere."""
    state = read_checkpoint(runs["trunk"])
    for moments in state["optimizer"]["state"].values():
        moments["exp_avg_sq"].zero_()
    forged = runs["root"] / "forged_optimizer.pt"
    torch.save(state, forged)
    out = runs["root"] / "forged_optimizer"
    result = _cell(tiny_data, runs["branch_stream"], runs["window"], out, forged)
    assert result["final_test"] != runs["full"]["final_test"]


def test_the_equality_would_fail_with_another_prefix(runs, tiny_data, tmp_path) -> None:
    """A trunk trained on another order (seed 1's trunk stream), its record forged to pass the
    check, ends elsewhere; unforged, the check refuses it."""
    other, _, _ = _streams(tmp_path / "streams", tiny_data, seed=1)
    trunk = tmp_path / "other.pt"
    train_trunk(_inputs(tiny_data, other), "micro", CFG, 0, "other", None, BRANCH, trunk)
    with pytest.raises(TrainingError, match="the stream's prefix differs"):
        _cell(tiny_data, runs["branch_stream"], runs["window"], tmp_path / "refused", trunk)
    state = read_checkpoint(trunk)
    state["match"] = read_checkpoint(runs["trunk"])["match"]
    torch.save(state, trunk)
    result = _cell(tiny_data, runs["branch_stream"], runs["window"], tmp_path / "forged", trunk)
    assert result["final_test"] != runs["full"]["final_test"]


def test_other_learning_rates_are_refused(runs, tiny_data, tmp_path) -> None:
    cfg = replace(CFG, lr=CFG.lr * 2)
    with pytest.raises(TrainingError, match="learning rates of the steps so far differ"):
        inputs = _inputs(tiny_data, runs["branch_stream"])
        log = (tmp_path / "x.log").open("w")
        job = CellJob("x", inputs, cfg, 0, tmp_path, None, runs["window"], runs["trunk"])
        train_cell(job, "micro", 1, log)


@pytest.mark.parametrize("second", ["scratch", "branch"])
def test_a_branch_in_a_batched_pack_equals_the_cell_trained_from_step_0(
    runs, tiny_data, second
) -> None:
    """In one batched computation beside a cell trained from step 0, or beside another branch
    (no cell at step 0 at all): each as if alone."""
    root = runs["root"] / f"batched_{second}"
    common = {"cfg": CFG, "seed": 0, "window_start": runs["window"]}
    trunks = [runs["trunk"], runs["trunk"] if second == "branch" else None]
    jobs = [
        CellJob(name, _inputs(tiny_data, runs["branch_stream"]), out_dir=root / name,
                log=root / f"{name}.log", trunk=trunk, **common)
        for name, trunk in zip(("first", "second"), trunks, strict=True)
    ]  # fmt: skip
    results = train_pack(jobs, "micro", {"name": "p", "cells": ["first", "second"]}, "batched")
    steps = [(r["inherited"] or {}).get("step", 0) for r in results]
    assert steps == [BRANCH, BRANCH if second == "branch" else 0]
    for job, result in zip(jobs, results, strict=True):
        for name, final in result["final_test"].items():
            full = runs["full"]["final_test"][name]["loss"]
            assert abs(final["loss"] - full) <= LOSS_TOLERANCE, (job.cell, name)


def test_a_start_depends_on_its_own_schedule_only() -> None:
    """Adding windows never moves another schedule's start (which would retrain its cells);
    the baseline starts where its fixed decay leaves the trunk's stable learning rate."""
    from curriculab.training.branch import trunk_parent, trunk_starts

    members = {"shuffled": {"family": "shuffled", "trunk": "main"}, "w": WINDOW}
    before = trunk_starts(members, CFG, 512, 16)
    more = {f"w{k}": {**WINDOW, "window": k / 20} for k in range(1, 19)}
    after = trunk_starts(members | more, CFG, 512, 16)
    assert {name: after[name] for name in before} == before
    assert before["shuffled"] == 32 - round(CFG.decay_fraction * 32)  # 32 steps
    assert trunk_parent(10, [8, 10, 12], recorded=None) == 8
    assert trunk_parent(12, [8, 10, 12], recorded=8) == 8  # kept: no rerun
    assert trunk_parent(12, [10, 12], recorded=8) == 10  # 8 is gone: the latest before
