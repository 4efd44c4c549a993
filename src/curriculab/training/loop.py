"""One training run (a cell), top to bottom; and a pack of cells, one after another.

Read `train_cell` top to bottom:
1. runtime: threads, determinism, TF32 and the device (CUDA when present, CPU otherwise;
   `curriculab.training.devices`);
2. the run (`curriculab.training.cell.open_run`): the seed's model, AdamW, the stream's
   memory-mapped batches, the held-out sets; or where its checkpoint or its trunk left it;
3. the loop (`train_steps`): the learning rate of each step (`curriculab.training.lr`, its WSD
   decay optionally starting at the stream's final D1 window), gradient accumulation to the
   token batch, clipping, bf16 autocast and torch.compile on CUDA (`.optim`); after each step
   the run books it (`cell.book_step`): progress lines (tokens/s, ETA), the learning curve at
   log- or evenly-spaced steps, checkpoints every N steps (a killed job resumes with identical
   results), snapshots for cells that branch off this one (`.branch`);
4. the final test on `final_eval_blocks` of every test shard, on the weights in memory
   (`.heldout`), and the outputs (`cell.finish`, `.outputs`: model, curve, metrics.json with
   the learning rate each domain was trained at).
`train_pack` trains a pack's cells one after another here, or batched (`.batched`).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from curriculab.io import read_json, sha256_file
from curriculab.streams.stream_file import read_stream
from curriculab.training.batched import train_batched
from curriculab.training.branch import Branching, Candidate, Snapshot, plan_branches
from curriculab.training.cell import (
    CellJob,
    Run,
    book_step,
    branch_off,
    finish,
    log_progress,
    open_run,
    raise_if_bad,
    record_curve,
    save,
    set_lr,
)
from curriculab.training.devices import setup_runtime
from curriculab.training.distributed import is_writer
from curriculab.training.distributed import start as join_ranks
from curriculab.training.heldout import final_test, mean_loss
from curriculab.training.inputs import verify_inputs
from curriculab.training.optim import accumulation_steps, train_step


def train_cell(
    job: CellJob,
    preset: str,
    threads: int = 1,
    log: TextIO = sys.stderr,
    pack: dict[str, Any] | None = None,
    verify: bool = True,
    branching: Branching | None = None,
) -> dict[str, Any]:
    """Train one cell; write model/ (safetensors), curve.parquet and metrics.json to its
    out_dir.

    The job's window_start: where the stream's final D1 window begins (its summary's
    `window_start`), for a WSD arm whose decay starts there (`decay_start: window`); its trunk:
    a trunk checkpoint to start from (curriculab.training.trunk), refused unless the stream's
    prefix, the learning rates and the settings up to it are this cell's own.
    pack: the pack that trains the cell (curriculab.training.packs), recorded in metrics.json.
    verify: check the shards' hashes first (a pack checks them once for all its cells).
    branching: start from another cell's snapshot and/or keep snapshots for cells that branch
    off this one (curriculab.training.branch); the results are those of training from scratch.
    A checkpoint in out_dir/checkpoint.pt (every cfg.checkpoint_every steps) is resumed from
    when the run is started again with the same settings, and removed when the run is done.
    """
    if verify:
        verify_inputs(job.inputs)
    device = setup_runtime(threads, job.cfg.device)
    manifests = {name: read_json(path) for name, path in job.inputs.manifests.items()}
    run = open_run(job, preset, device, manifests, log, job.out_dir / "checkpoint.pt")
    branching = branching or Branching()
    if run.progress.step == 0 and job.trunk is None and branching.start is not None:
        branch_off(run, branching.start)
    started = time.perf_counter()
    train_steps(run, run.data.steps, branching.keep)
    final = final_test(run.model, job.inputs.test_shards, manifests, job.cfg.final_eval_blocks,
                       device)  # fmt: skip
    return finish(run, final, threads, pack, started)


def train_steps(run: Run, until: int, keep: dict[int, Snapshot | None] | None = None) -> None:
    """Optimiser steps from run.progress.step up to `until` (exclusive), measuring the curve at
    its steps, saving the run's checkpoint every cfg.checkpoint_every steps, and taking the
    snapshots in `keep` (curriculab.training.branch) as their steps come."""
    cfg, data, progress, keep = run.cfg, run.data, run.progress, keep or {}
    accumulation = accumulation_steps(cfg)
    if progress.step == 0:
        record_curve(run, 0, held_out_losses(run))
    run.model.train()
    for step in range(progress.step, until):
        if step in keep:
            keep[step] = Snapshot.take(step, run.label, run.model, run.optimizer, progress)
        tick = time.perf_counter()
        set_lr(run, step)
        tokens = data.batch(step)
        loss = train_step(run.forward, run.optimizer, tokens, accumulation, cfg, run.device)
        due = book_step(run, step, loss, tokens.numel(), until)
        progress.train_seconds += time.perf_counter() - tick
        if due.log:
            log_progress(run, loss)
        if due.curve:
            record_curve(run, step + 1, held_out_losses(run))
        if due.save:
            save(run)
    raise_if_bad(run)


def held_out_losses(run: Run) -> dict[str, float]:
    """The run's held-out loss on every domain's learning-curve blocks."""
    return {
        name: mean_loss(run.model, blocks, run.device) for name, blocks in run.eval_sets.items()
    }


# --- packs ----------------------------------------------------------------------------------


def _candidate(job: CellJob) -> Candidate:
    """What decides whether the job shares a prefix with another (curriculab.training.branch)."""
    _, _, blocks = read_stream(job.inputs.stream)
    # By content: a matched control's stream is the baseline's under another name.
    stream = sha256_file(job.inputs.stream) if job.trunk is None else None  # None: shares none
    return Candidate(stream, job.seed, job.cfg, job.window_start, len(blocks))


def train_pack(
    jobs: list[CellJob],
    preset: str,
    pack: dict[str, Any],
    packing: str = "serial",
    threads: int = 1,
    log: TextIO = sys.stderr,
) -> list[dict[str, Any]]:
    """Train the cells of one pack in this process; each cell's metrics, in pack order.

    `serial` trains one cell after another (`train_cell`): exactly what a job of its own would
    compute (the same floats on the CPU), without paying the interpreter, torch, transformers
    and the shards' hashes once per cell; a cell that shares a prefix with an earlier one
    starts from its snapshot. `batched` trains them all in every step (`.batched`).
    """
    shared = {
        (tuple(sorted(j.inputs.manifests.items())), j.inputs.tokenizer): j.inputs for j in jobs
    }
    for inputs in shared.values():  # every shard read (hashed) once per pack, not per cell
        verify_inputs(inputs)
    device = setup_runtime(threads, jobs[0].cfg.device)
    if packing == "auto":  # batched pays off where one small model leaves the device idle
        packing = "batched" if device.type == "cuda" else "serial"
    join_ranks(device)  # data parallel: one group
    record = {**pack, "packing": packing}
    for job in jobs:
        job.log.parent.mkdir(parents=True, exist_ok=True)
    if packing == "batched":
        return train_batched(jobs, preset, record, threads, log)
    branches = plan_branches([_candidate(job) for job in jobs])
    keep: dict[int, dict[int, Snapshot | None]] = {}
    users: dict[tuple[int, int], int] = {}  # snapshots are freed after their last user
    for root, step in branches.values():
        keep.setdefault(root, {})[step] = None
        users[root, step] = users.get((root, step), 0) + 1
    results, started = [], time.perf_counter()
    for index, job in enumerate(jobs):
        start = None
        if index in branches:
            root, step = branches[index]
            start = keep[root][step]
            users[root, step] -= 1
            if not users[root, step]:
                keep[root][step] = None
        branching = Branching(start=start, keep=keep.get(index, {}))
        cell_log_path = job.log if is_writer() else Path(os.devnull)  # rank 0 logs the cell
        with cell_log_path.open("w", buffering=1) as cell_log:
            metrics = train_cell(job, preset, threads, cell_log, record, False, branching)
        results.append(metrics)
        elapsed = time.perf_counter() - started
        if not is_writer():
            continue
        print(
            f"pack {pack['name']}: cell {index + 1}/{len(jobs)} done ({job.cell}), "
            f"{metrics['tokens_per_second']:,.0f} tokens/s, "
            f"ETA {elapsed / (index + 1) * (len(jobs) - index - 1):.0f}s",
            file=log,
            flush=True,
        )
    return results
