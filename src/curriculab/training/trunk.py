"""Trunks: one shared run of the base mixture that end-of-training windows branch off.

"Does your data spark joy?" (arXiv 2406.03476) trains a model once on the base mixture and
starts every end-of-training variant (a window of 5-30% with a domain upsampled, the same window
with one dataset removed) from the checkpoint where its window begins. Here a trunk is trained
once per (ratio, trunk, learning-rate arm, seed), in segments: the checkpoint at each branch
point is its own cached target, trained from the checkpoint before it, so a new branch point
adds one segment and retrains nothing.

A branch resumes the whole state (weights, AdamW moments and step counts, RNG states, progress
and the learning curve so far) and trains only its window; on the CPU its results are bitwise
those of training the cell from step 0 (tests/training/test_trunk.py). A checkpoint carries what it
took to get there: a hash of the stream's prefix, of the learning rates of every step so far,
and of the settings. A run whose own prefix, learning rates or settings differ is refused with
one line saying which, never silently resumed.

The trunk's learning rate is the branches' own up to the branch point: a WSD arm whose decay
starts at the window (`decay_start: window`) is in its stable phase on the trunk, and each
branch's cooldown starts at its own branch point (the constant-plus-cooldown recipe of
arXiv 2405.18392).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, TextIO

from curriculab.config import TrainConfig
from curriculab.io import read_json
from curriculab.training.branch import trunk_window_start
from curriculab.training.cell import match_record, open_run, resume_from
from curriculab.training.checkpoint import TrainingError, read_checkpoint, save_checkpoint
from curriculab.training.devices import setup_runtime
from curriculab.training.inputs import CellInputs, verify_inputs
from curriculab.training.loop import train_steps
from curriculab.training.model import model_flops_per_token
from curriculab.training.run import CellJob


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
    device = setup_runtime(threads, cfg.device)
    manifests = {name: read_json(path) for name, path in inputs.manifests.items()}
    job = CellJob(label, inputs, cfg, seed, out.parent, None, trunk_window_start(cfg))
    work = out.with_name(out.stem + ".work.pt")  # the segment's own resumable checkpoint
    run = open_run(job, preset, device, manifests, log, checkpoint=work)
    first = 0
    if parent is not None:
        state = read_checkpoint(parent)
        first = state.get("match", {}).get("step", 0)
        if run.progress.step == 0:
            run.progress = resume_from(run, parent, state)
    started, seconds = time.perf_counter(), run.progress.train_seconds
    if not 0 <= run.progress.step < until <= run.data.steps:
        raise TrainingError(f"{label}: cannot train from step {run.progress.step} to {until}")
    print(f"{label}: steps {run.progress.step} to {until} of {run.data.steps}", file=log)
    train_steps(run, until)
    match = match_record(run, until)
    save_checkpoint(out, run.model, run.optimizer, run.progress, run.fingerprint, match=match)
    work.unlink(missing_ok=True)
    return {
        "step": until,
        "parent": first,
        "tokens_trained": (until - first) * cfg.batch_size * run.data.seq_len,
        "tokens_seen": run.progress.tokens_seen,
        "flops_per_token": model_flops_per_token(run.model, run.data.seq_len),
        "train_seconds": run.progress.train_seconds - seconds,
        "wall_seconds": time.perf_counter() - started,
    }
