"""The life of one run (a cell, or a trunk segment), shared by every way of training it.

open -> [train steps: `book_step` after each] -> `record_curve` at its evaluation steps ->
`finish` (final test, outputs, metrics.json). The serial loop (`curriculab.training.loop`)
and the batched pack (`curriculab.training.batched`) both go through these functions, so what
a cell records, checks and writes cannot drift apart between them; they differ only in how
the forward and backward passes are computed.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch

from curriculab.io import write_json
from curriculab.training.branch import LR_KEYS, Snapshot
from curriculab.training.checkpoint import (
    Progress,
    TrainingError,
    load_checkpoint,
    read_checkpoint,
    restore,
    run_fingerprint,
    save_checkpoint,
)
from curriculab.training.distributed import backend, is_writer, rank_world
from curriculab.training.heldout import curve_row, eval_steps, spread_sets
from curriculab.training.inputs import StreamBatches
from curriculab.training.model import build_model
from curriculab.training.optim import make_optimizer, wants_compile
from curriculab.training.outputs import write_outputs
from curriculab.training.run import CellJob, Run


def open_run(
    job: CellJob, preset: str, device: torch.device, manifests: dict[str, dict[str, Any]],
    log: TextIO, checkpoint: Path | None,
) -> Run:  # fmt: skip
    """A run at step 0 (the seed's initial weights, AdamW, the stream's batches), or where its
    own checkpoint left it, or, when it has none and names a trunk, where the trunk ends."""
    shapes = next(iter(manifests.values()))  # every shard shares tokenizer and seq_len
    cfg = job.cfg
    model = build_model(preset, shapes["vocab_size"], shapes["seq_len"], job.seed).to(device)
    optimizer = make_optimizer(model, cfg, device)
    forward = torch.compile(model) if wants_compile(cfg, device) else model
    data = StreamBatches(job.inputs, cfg.batch_size, device)
    eval_sets = {
        name: blocks
        for name, (blocks, _) in spread_sets(job.inputs.test_shards, cfg.eval_blocks).items()
    }
    evaluate_at = set(eval_steps(data.steps, cfg.eval_points, cfg.eval_spacing))
    fingerprint = run_fingerprint(data.stream_sha256, preset, cfg, job.seed, job.window_start)
    run = Run(
        job, preset, device, manifests, model, optimizer, forward, data, eval_sets, evaluate_at,
        checkpoint, fingerprint, log,
    )  # fmt: skip
    if checkpoint is not None:
        run.progress = load_checkpoint(checkpoint, model, optimizer, fingerprint, log)
    if run.progress.step == 0 and job.trunk is not None:  # (its own checkpoint wins)
        run.progress = resume_from(run, job.trunk)
        run.progress.inherited = inheritance("trunk", str(job.trunk), run.progress)
        print(f"resumed from trunk {job.trunk} at step {run.progress.step}", file=log, flush=True)
    world = rank_world()[1]
    if world > 1:
        line = f"data parallel: {world} ranks ({backend(device)}), rank r takes micro-batches r"
        print(f"{line}, r + {world}, ... of every step's {cfg.batch_size} sequences", file=log,
              flush=True)  # fmt: skip
    run.resumed_at = run.progress.step
    run.first_bad = torch.full((), -1, device=device)
    return run


# Settings that change nothing a run computes (how often it logs and checkpoints itself).
INERT_KEYS = frozenset({"log_every_steps", "checkpoint_every"})
MISMATCH = {
    "settings": "the model, seed or training settings differ",
    "steps": "the run's length in optimiser steps differs",
    "data": "the shards or the tokenizer differ",
    "prefix": "the stream's prefix differs (another trunk, ratio or seed, or another order)",
    "learning_rates": "the learning rates of the steps so far differ",
}


def match_record(run: Run, step: int) -> dict[str, Any]:
    """What a run computed up to `step`, in hashes: its settings, its length, its data (the
    shards' manifests: their checksums and tokenizer), the first `step` batches of its stream
    and the learning rate of each step. A trunk checkpoint carries it (training.trunk)."""
    data, cfg = run.data, run.cfg
    n = min(step * cfg.batch_size, len(data.blocks))
    prefix = hashlib.sha256(json.dumps(data.names).encode())
    prefix.update(data.domains[:n].astype(np.int64).tobytes())
    prefix.update(data.blocks[:n].astype(np.int64).tobytes())
    lrs = np.array([run.lr(s) for s in range(step)], np.float64)
    settings = {k: v for k, v in asdict(cfg).items() if k not in LR_KEYS | INERT_KEYS}
    return {
        "step": step,
        "settings": repr((run.preset, run.job.seed, sorted(settings.items()))),
        "steps": data.steps,
        "data": hashlib.sha256(json.dumps(run.manifests, sort_keys=True).encode()).hexdigest(),
        "prefix": prefix.hexdigest(),
        "learning_rates": hashlib.sha256(lrs.tobytes()).hexdigest(),
    }


def resume_from(run: Run, path: Path, state: dict[str, Any] | None = None) -> Progress:
    """Put the trunk checkpoint at `path` into the run's model and optimiser, after checking
    that it is this run's own past (a TrainingError naming what differs otherwise); its
    progress."""
    state = state or read_checkpoint(path)
    match = state.get("match")
    if match is None:
        raise TrainingError(f"{run.label}: {path} is not a trunk checkpoint (no match record)")
    expected = match_record(run, match["step"])
    for key, problem in MISMATCH.items():
        if match.get(key) != expected[key]:
            raise TrainingError(f"{run.label}: cannot resume from trunk {path}: {problem}")
    return restore(state, run.model, run.optimizer)


def branch_off(run: Run, start: Snapshot) -> None:
    """Start a run from another cell's snapshot (a shared prefix, curriculab.training.branch)."""
    run.model.load_state_dict(start.model)
    # A copy: load_state_dict keeps the snapshot's tensors, which training updates in place,
    # and another cell may branch off the same snapshot after this one.
    run.optimizer.load_state_dict(copy.deepcopy(start.optimizer))
    run.progress = copy.deepcopy(start.progress)
    run.progress.inherited = inheritance("cell", start.cell, run.progress)
    run.resumed_at = run.progress.step
    print(f"branched off {start.cell} at step {start.step} (identical so far)", file=run.log)


def inheritance(source: str, origin: str, progress: Progress) -> dict[str, Any]:
    """What a run took over instead of training it (metrics.json `inherited`): from a trunk
    or another cell, up to which step, how many tokens, and their measured seconds."""
    return {
        "source": source,
        "from": origin,
        "step": progress.step,
        "tokens": progress.tokens_seen,
        "train_seconds": progress.train_seconds,
    }


def set_lr(run: Run, step: int) -> None:
    """The learning rate of optimiser step `step` into every parameter group."""
    for group in run.optimizer.param_groups:
        group["lr"] = run.lr(step)


@dataclass(frozen=True)
class Due:
    """What follows an optimiser step: a progress line, a checkpoint, a learning-curve point."""

    log: bool
    save: bool
    curve: bool


def book_step(run: Run, step: int, loss: torch.Tensor, tokens: int, until: int) -> Due:
    """Count optimiser step `step` (of a run training up to `until`) and say what is due.
    Where anything is, the host waits for the device and a non-finite loss so far stops the
    run; elsewhere it does not wait."""
    progress, cfg = run.progress, run.cfg
    run.first_bad = torch.where((run.first_bad < 0) & ~torch.isfinite(loss), step, run.first_bad)
    progress.step, progress.tokens_seen = step + 1, progress.tokens_seen + tokens
    last = step + 1 == run.data.steps
    saving = bool(cfg.checkpoint_every) and (step + 1) % cfg.checkpoint_every == 0 and not last
    saving = saving and run.checkpoint is not None and step + 1 < until
    due = Due((step + 1) % cfg.log_every_steps == 0 or last, saving, step + 1 in run.evaluate_at)
    if due.log or due.save or due.curve:
        raise_if_bad(run)
        if run.device.type == "cuda":
            torch.cuda.synchronize()
    return due


def raise_if_bad(run: Run) -> None:
    """Stop the run if a step so far had a non-finite loss (waits for the device)."""
    if run.first_bad.item() >= 0:
        raise TrainingError(f"cell {run.label}: non-finite loss at step {run.first_bad.item()}")


def log_progress(run: Run, loss: torch.Tensor) -> None:
    """One progress line: step, loss, learning rate, tokens/s and the time left."""
    progress, total_steps = run.progress, run.data.steps
    rate = progress.tokens_seen / max(progress.train_seconds, 1e-9)
    eta = (total_steps - progress.step) * progress.train_seconds / max(progress.step, 1)
    print(
        f"step {progress.step}/{total_steps} loss {loss.item():.4f} "
        f"lr {run.optimizer.param_groups[0]['lr']:.2e} {rate:,.0f} tokens/s ETA {eta:.0f}s",
        file=run.log,
        flush=True,
    )


def save(run: Run) -> None:
    """The run's resumable checkpoint, as it stands (rank 0's, when data parallel)."""
    if not is_writer():
        return
    save_checkpoint(run.checkpoint, run.model, run.optimizer, run.progress, run.fingerprint)


def record_curve(run: Run, step: int, losses: dict[str, float]) -> None:
    """Append the held-out losses of every domain after `step` steps to the curve."""
    for name, loss in losses.items():
        row = curve_row(step, run.progress.tokens_seen, name, loss, run.manifests[name])
        run.progress.curve.append(row)


def finish(
    run: Run, final: dict[str, dict[str, Any]], threads: int, pack: dict[str, Any] | None,
    started: float,
) -> dict[str, Any]:  # fmt: skip
    """Write the cell's outputs (model, curve, metrics.json) and drop its checkpoint; its
    metrics. A data-parallel rank other than 0 writes nothing and gives its throughput."""
    if not is_writer():
        return {
            "tokens_per_second": run.progress.tokens_seen / max(run.progress.train_seconds, 1e-9)
        }
    metrics = write_outputs(run, final, threads)
    metrics.update(resumed_at_step=run.resumed_at, wall_seconds=time.perf_counter() - started)
    if pack is not None:
        metrics["pack"] = pack
    metrics["inherited"] = run.progress.inherited  # (kept in its checkpoints, if killed)
    write_json(run.job.out_dir / "metrics.json", metrics)
    if run.checkpoint is not None:
        run.checkpoint.unlink(missing_ok=True)
    return metrics
