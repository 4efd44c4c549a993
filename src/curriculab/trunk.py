"""Trunks: one shared run of the base mixture that end-of-training windows branch off.

"Does your data spark joy?" (arXiv 2406.03476) trains a model once on the base mixture and
starts every end-of-training variant (a window of 5-30% with a domain upsampled, the same window
with one dataset removed) from the checkpoint where its window begins. Here a trunk is trained
once per (ratio, trunk, learning-rate arm, seed), in segments: the checkpoint at each branch
point is its own cached target, trained from the checkpoint before it, so a new branch point
adds one segment and retrains nothing.

A branch resumes the whole state (weights, AdamW moments and step counts, RNG states, progress
and the learning curve so far) and trains only its window; on the CPU its results are bitwise
those of training the cell from step 0 (tests/test_trunk.py). A checkpoint carries what it
took to get there: a hash of the stream's prefix, of the learning rates of every step so far,
and of the settings. A run whose own prefix, learning rates or settings differ is refused with
one line saying which, never silently resumed.

The trunk's learning rate is the branches' own up to the branch point: a WSD arm whose decay
starts at the window (`decay_start: window`) is in its stable phase on the trunk, and each
branch's cooldown starts at its own branch point (the constant-plus-cooldown recipe of
arXiv 2405.18392).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from curriculab.branch import LR_KEYS, trunk_window_start
from curriculab.checkpoint import (
    Progress,
    TrainingError,
    load_checkpoint,
    read_checkpoint,
    restore,
    run_fingerprint,
    save_checkpoint,
)
from curriculab.config import TrainConfig
from curriculab.lr import lr_at
from curriculab.model import flops_per_token
from curriculab.train import (
    CellInputs,
    Run,
    StreamBatches,
    inheritance,
    open_run,
    train_steps,
    verify_inputs,
)

# Settings that change nothing a run computes (how often it logs and checkpoints itself).
INERT_KEYS = frozenset({"log_every_steps", "checkpoint_every"})
MISMATCH = {
    "settings": "the model, seed or training settings differ",
    "steps": "the run's length in optimiser steps differs",
    "data": "the shards or the tokenizer differ",
    "prefix": "the stream's prefix differs (another trunk, ratio or seed, or another order)",
    "learning_rates": "the learning rates of the steps so far differ",
}


def match_record(
    data: StreamBatches, cfg: TrainConfig, window_start: float | None, step: int, preset: str,
    seed: int, manifests: dict[str, dict[str, Any]],
) -> dict[str, Any]:  # fmt: skip
    """What a run computed up to `step`, in hashes: its settings, its length, its data (the
    shards' manifests: their checksums and tokenizer), the first `step` batches of its stream
    and the learning rate of each step."""
    n = min(step * cfg.batch_size, len(data.blocks))
    prefix = hashlib.sha256(json.dumps(data.names).encode())
    prefix.update(data.domains[:n].astype(np.int64).tobytes())
    prefix.update(data.blocks[:n].astype(np.int64).tobytes())
    lrs = np.array([lr_at(s, data.steps, cfg, window_start) for s in range(step)], np.float64)
    settings = {k: v for k, v in asdict(cfg).items() if k not in LR_KEYS | INERT_KEYS}
    return {
        "step": step,
        "settings": repr((preset, seed, sorted(settings.items()))),
        "steps": data.steps,
        "data": hashlib.sha256(json.dumps(manifests, sort_keys=True).encode()).hexdigest(),
        "prefix": prefix.hexdigest(),
        "learning_rates": hashlib.sha256(lrs.tobytes()).hexdigest(),
    }


def resume(
    model, optimizer, data: StreamBatches, cfg: TrainConfig, window_start: float | None,
    label: str, path: Path, preset: str, seed: int, manifests: dict[str, dict[str, Any]],
    state: dict[str, Any] | None = None,
) -> Progress:  # fmt: skip
    """Put the trunk checkpoint at `path` into model and optimiser, after checking that it is
    this run's own past (a TrainingError naming what differs otherwise); its progress."""
    state = state or read_checkpoint(path)
    match = state.get("match")
    if match is None:
        raise TrainingError(f"{label}: {path} is not a trunk checkpoint (no match record)")
    expected = match_record(data, cfg, window_start, match["step"], preset, seed, manifests)
    for key, problem in MISMATCH.items():
        if match.get(key) != expected[key]:
            raise TrainingError(f"{label}: cannot resume from trunk {path}: {problem}")
    return restore(state, model, optimizer)


def branch_from_trunk(
    model, optimizer, data: StreamBatches, cfg: TrainConfig, window_start: float | None,
    label: str, path: Path, preset: str, seed: int, manifests: dict[str, dict[str, Any]],
    log: TextIO,
) -> Progress:  # fmt: skip
    """Start a cell from a trunk checkpoint (`resume`); its progress, recording what it
    inherited (metrics.json `inherited`)."""
    progress = resume(model, optimizer, data, cfg, window_start, label, path, preset, seed,
                      manifests)  # fmt: skip
    progress.inherited = inheritance("trunk", str(path), progress)
    print(f"resumed from trunk {path} at step {progress.step}", file=log, flush=True)
    return progress


def resume_from_trunk(run: Run, path: Path, preset: str, seed: int) -> None:
    """Start a cell's run from a trunk checkpoint (branch_from_trunk)."""
    run.progress = branch_from_trunk(run.model, run.optimizer, run.data, run.cfg,
                                     run.window_start, run.cell, path, preset, seed,
                                     run.manifests, run.log)  # fmt: skip


def train_trunk(
    inputs: CellInputs,
    preset: str,
    cfg: TrainConfig,
    seed: int,
    label: str,
    parent: Path | None,
    until: int,
    out: Path,
    threads: int = 1,
    log: TextIO = sys.stderr,
) -> dict[str, Any]:
    """Train a trunk segment: from the checkpoint `parent` (None: step 0) up to step `until`,
    on the trunk's stream; write the checkpoint `out`. What the segment cost, for the record
    (tokens: those of the segment's steps, whatever a restart of the job re-used)."""
    verify_inputs(inputs)
    run = open_run(inputs, preset, cfg, seed, label, threads, log, trunk_window_start(cfg))
    work = out.with_name(out.stem + ".work.pt")  # the segment's own resumable checkpoint
    fingerprint = run_fingerprint(inputs.stream, preset, cfg, seed, run.window_start)
    run.progress = load_checkpoint(work, run.model, run.optimizer, fingerprint, log)
    first = 0
    if parent is not None:
        state = read_checkpoint(parent)
        first = state.get("match", {}).get("step", 0)
        if run.progress.step == 0:
            run.progress = resume(run.model, run.optimizer, run.data, cfg, run.window_start,
                                  label, parent, preset, seed, run.manifests, state)  # fmt: skip
    started, seconds = time.perf_counter(), run.progress.train_seconds
    if not 0 <= run.progress.step < until <= run.data.steps:
        raise TrainingError(f"{label}: cannot train from step {run.progress.step} to {until}")
    print(f"{label}: steps {run.progress.step} to {until} of {run.data.steps}", file=log)
    train_steps(run, until, work, fingerprint)
    match = match_record(run.data, cfg, run.window_start, until, preset, seed, run.manifests)
    save_checkpoint(out, run.model, run.optimizer, run.progress, fingerprint, match=match)
    work.unlink(missing_ok=True)
    return {
        "step": until,
        "parent": first,
        "tokens_trained": (until - first) * cfg.batch_size * run.data.seq_len,
        "tokens_seen": run.progress.tokens_seen,
        "flops_per_token": flops_per_token(run.model, run.data.seq_len),
        "train_seconds": run.progress.train_seconds - seconds,
        "wall_seconds": time.perf_counter() - started,
    }
