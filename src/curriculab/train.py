"""One training run (a cell): read the stream, train the model, evaluate along the way.

Read it top to bottom:
1. runtime: threads, determinism, TF32 and the device (CUDA when present, CPU otherwise);
2. inputs: memory-mapped shards, gathered in stream order into (micro-)batches;
3. the loop: AdamW with a learning-rate schedule (`curriculab.lr.lr_at`, its WSD decay
   optionally starting at the stream's final D1 window), gradient accumulation to the token
   batch, gradient clipping, bf16 autocast and torch.compile on CUDA;
4. held-out loss of every domain at log- or evenly-spaced steps (the learning curve), and the
   final test loss on `final_eval_blocks` of every test shard, on the model in memory (the same
   weights that are saved; no second process reloads them);
5. checkpoints every N steps, so a killed job resumes where it stopped with identical results;
6. exposure: the learning rate each domain's sequences were trained at (`curriculab.lr`);
   the outputs are written by `curriculab.outputs`;
7. branches: a cell may start from another cell's snapshot (`curriculab.branch`) or from a
   trunk checkpoint (`curriculab.trunk`), and then trains only the rest.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch

from curriculab.branch import Branching, Snapshot
from curriculab.checkpoint import (
    Progress,
    TrainingError,
    load_checkpoint,
    run_fingerprint,
    save_checkpoint,
)
from curriculab.config import TrainConfig
from curriculab.data.shards import read_blocks, verify_shard, verify_tokenizer
from curriculab.devices import claim_device
from curriculab.evaluate import bits_per_byte, spread_subset
from curriculab.heldout import eval_steps, final_test, mean_loss
from curriculab.io import read_json, sha256_file, write_json
from curriculab.lr import lr_at
from curriculab.model import build_model
from curriculab.outputs import write_outputs
from curriculab.streams.stream_file import read_stream


@dataclass(frozen=True)
class CellInputs:
    """Files one cell reads; every mapping is keyed by domain name."""

    stream: Path
    train_shards: dict[str, Path]
    test_shards: dict[str, Path]
    manifests: dict[str, Path]
    tokenizer: Path


# --- schedules of the run -------------------------------------------------------------------


# --- data -----------------------------------------------------------------------------------


class StreamBatches:
    """Token batches in stream order, gathered from memory-mapped shards (no tokens copied
    until a batch is built; on CUDA the batch is pinned and moved without blocking)."""

    def __init__(self, inputs: CellInputs, batch_size: int, device: torch.device) -> None:
        self.names, self.domains, self.blocks = read_stream(inputs.stream)
        self.stream_sha256 = sha256_file(inputs.stream)  # what it trained on, for the audit
        names = self.names
        self.shards = [read_blocks(inputs.train_shards[name]) for name in names]
        self.batch_size = batch_size
        self.device = device
        self.seq_len = self.shards[0].shape[1]
        self.steps = math.ceil(len(self.blocks) / batch_size)

    def batch(self, step: int) -> torch.Tensor:
        """The (B, T) int64 tokens of optimiser step `step`."""
        span = slice(step * self.batch_size, (step + 1) * self.batch_size)
        domains, blocks = self.domains[span], self.blocks[span]
        out = np.empty((len(blocks), self.seq_len), dtype=np.int64)
        for k, shard in enumerate(self.shards):
            rows = np.flatnonzero(domains == k)
            out[rows] = shard[blocks[rows]]
        tokens = torch.from_numpy(out)
        if self.device.type == "cuda":
            return tokens.pin_memory().to(self.device, non_blocking=True)
        return tokens


# --- runtime --------------------------------------------------------------------------------


def setup_runtime(threads: int, choice: str) -> torch.device:
    """Threads from Snakemake, deterministic CPU kernels, TF32 matmuls on CUDA; the device."""
    torch.set_num_threads(max(1, threads))
    device = claim_device(choice)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    else:
        torch.use_deterministic_algorithms(True, warn_only=True)
    return device


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device):
    """AdamW; no weight decay on norms and biases (1-D tensors); fused kernels on CUDA, and
    the multi-tensor (foreach) update on the CPU, ~10% faster for small models than one
    tensor at a time (bench/README.md)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    fused = device.type == "cuda"
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95), fused=fused, foreach=not fused)


def wants_compile(cfg: TrainConfig, device: torch.device) -> bool:
    """torch.compile pays off on CUDA; on CPU its compile time exceeds a short run's gain."""
    return cfg.compile == "on" or (cfg.compile == "auto" and device.type == "cuda")


# --- inputs -------------------------------------------------------------------------------


def verify_inputs(inputs: CellInputs) -> None:
    """Every shard matches its manifest's sha256, and the tokenizer is the shards' tokenizer."""
    for name, manifest in sorted(inputs.manifests.items()):
        verify_shard(inputs.train_shards[name], manifest, "train")
        verify_shard(inputs.test_shards[name], manifest, "test")
    verify_tokenizer(
        inputs.tokenizer, [inputs.manifests[name] for name in sorted(inputs.manifests)]
    )


# --- the loop -------------------------------------------------------------------------------


def train_step(
    model, optimizer, tokens: torch.Tensor, accumulation: int, cfg, device
) -> torch.Tensor:
    """One optimiser step over `accumulation` micro-batches; returns the mean loss (a tensor,
    not synchronised, so the GPU is never made to wait for the host)."""
    total = torch.zeros((), device=device)
    micro_batches = tokens.chunk(accumulation)
    for micro in micro_batches:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = model(input_ids=micro, labels=micro).loss / len(micro_batches)
        loss.backward()
        total += loss.detach()
    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return total


def due_after(step: int, total_steps: int, cfg: TrainConfig) -> tuple[bool, bool]:
    """(save a checkpoint, write a progress line) after optimiser step `step`."""
    last = step + 1 == total_steps
    saving = bool(cfg.checkpoint_every) and (step + 1) % cfg.checkpoint_every == 0 and not last
    return saving, (step + 1) % cfg.log_every_steps == 0 or last


def raise_if_bad(first_bad: torch.Tensor, cell: str) -> None:
    """Stop the run if a step so far had a non-finite loss (waits for the device)."""
    if first_bad.item() >= 0:
        raise TrainingError(f"cell {cell}: non-finite loss at step {first_bad.item()}")


@dataclass
class Run:
    """A cell or a trunk while it trains: model, optimiser, data, progress, evaluation sets."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    forward: Any  # the model, or its torch.compile'd wrapper
    data: StreamBatches
    cfg: TrainConfig
    device: torch.device
    manifests: dict[str, dict[str, Any]]
    eval_sets: dict[str, np.ndarray]  # held-out blocks per domain for the learning curve
    evaluate_at: set[int]  # steps after which the learning curve is measured
    window_start: float | None  # where the LR's window decay starts (curriculab.lr)
    cell: str
    log: TextIO
    progress: Progress = field(default_factory=lambda: Progress(curve=[]))

    def lr(self, step: int) -> float:
        return lr_at(step, self.data.steps, self.cfg, self.window_start)


def open_run(
    inputs: CellInputs, preset: str, cfg: TrainConfig, seed: int, cell: str, threads: int,
    log: TextIO, window_start: float | None,
) -> Run:  # fmt: skip
    """A fresh run at step 0: the seed's initial weights, AdamW, the stream's batches."""
    device = setup_runtime(threads, cfg.device)
    manifests = {name: read_json(path) for name, path in inputs.manifests.items()}
    shapes = next(iter(manifests.values()))  # every shard shares tokenizer and seq_len
    model = build_model(preset, shapes["vocab_size"], shapes["seq_len"], seed).to(device)
    optimizer = make_optimizer(model, cfg, device)
    forward = torch.compile(model) if wants_compile(cfg, device) else model
    data = StreamBatches(inputs, cfg.batch_size, device)
    eval_sets = {
        name: blocks[spread_subset(len(blocks), cfg.eval_blocks)]
        for name, blocks in ((n, read_blocks(p)) for n, p in sorted(inputs.test_shards.items()))
    }
    evaluate_at = set(eval_steps(data.steps, cfg.eval_points, cfg.eval_spacing))
    return Run(
        model, optimizer, forward, data, cfg, device, manifests, eval_sets, evaluate_at,
        window_start, cell, log,
    )  # fmt: skip


def record_curve(run: Run, step: int) -> None:
    """Held-out loss of every domain after `step` optimiser steps, appended to the curve."""
    for name, blocks in run.eval_sets.items():
        loss = mean_loss(run.model, blocks, run.device)
        bpt = run.manifests[name]["splits"]["test"]["bytes_per_token"]
        run.progress.curve.append(
            {"step": step, "tokens_seen": run.progress.tokens_seen, "domain": name, "loss": loss,
             "bits_per_byte": bits_per_byte(loss, bpt)}
        )  # fmt: skip


def train_steps(
    run: Run, until: int, checkpoint: Path | None, fingerprint: str,
    keep: dict[int, Snapshot | None] | None = None,
) -> None:  # fmt: skip
    """Optimiser steps from run.progress.step up to `until` (exclusive), measuring the curve at
    its steps, saving a resumable checkpoint every cfg.checkpoint_every steps, and taking the
    snapshots in `keep` (curriculab.branch) as their steps come."""
    cfg, data, progress, keep = run.cfg, run.data, run.progress, keep or {}
    accumulation = max(1, cfg.batch_size // (cfg.micro_batch_size or cfg.batch_size))
    if progress.step == 0:
        record_curve(run, 0)
    run.model.train()
    first_bad = torch.full((), -1, device=run.device)  # first step with a non-finite loss
    for step in range(progress.step, until):
        if step in keep:
            keep[step] = Snapshot.take(step, run.cell, run.model, run.optimizer, progress)
        tick = time.perf_counter()
        for group in run.optimizer.param_groups:
            group["lr"] = run.lr(step)
        tokens = data.batch(step)
        loss = train_step(run.forward, run.optimizer, tokens, accumulation, cfg, run.device)
        first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss), step, first_bad)
        progress.step, progress.tokens_seen = step + 1, progress.tokens_seen + tokens.numel()
        saving, logging = due_after(step, data.steps, cfg)
        saving = saving and checkpoint is not None and step + 1 < until
        if logging or saving or step + 1 in run.evaluate_at:  # the host waits for the device
            raise_if_bad(first_bad, run.cell)
            if run.device.type == "cuda":
                torch.cuda.synchronize()
        progress.train_seconds += time.perf_counter() - tick
        if logging:
            log_progress(progress, data.steps, loss.item(), run.optimizer, run.log)
        if step + 1 in run.evaluate_at:
            record_curve(run, step + 1)
        if saving:
            save_checkpoint(checkpoint, run.model, run.optimizer, progress, fingerprint)
    raise_if_bad(first_bad, run.cell)


def train_cell(
    inputs: CellInputs,
    preset: str,
    cfg: TrainConfig,
    seed: int,
    cell: str,
    out_dir: Path,
    threads: int = 1,
    log: TextIO = sys.stderr,
    window_start: float | None = None,
    pack: dict[str, Any] | None = None,
    verify: bool = True,
    branching: Branching | None = None,
    trunk: Path | None = None,
) -> dict[str, Any]:
    """Train one cell; write model/ (safetensors), curve.parquet and metrics.json to out_dir.

    window_start: where the stream's final D1 window begins (its summary's `window_start`), for
    a WSD arm whose decay starts there (`decay_start: window`).
    pack: the pack that trains the cell (curriculab.pack), recorded in metrics.json.
    verify: check the shards' hashes first (a pack checks them once for all its cells).
    branching: start from another cell's snapshot and/or keep snapshots for cells that branch
    off this one (curriculab.branch); the results are those of training from scratch.
    trunk: a trunk checkpoint to start from (curriculab.trunk): refused unless the stream's
    prefix, the learning rates and the settings up to it are this cell's own.
    A checkpoint in out_dir/checkpoint.pt (every cfg.checkpoint_every steps) is resumed from
    when the run is started again with the same settings, and removed when the run is done.
    """
    from curriculab.trunk import resume_from_trunk

    if verify:
        verify_inputs(inputs)
    run = open_run(inputs, preset, cfg, seed, cell, threads, log, window_start)
    checkpoint = out_dir / "checkpoint.pt"
    fingerprint = run_fingerprint(inputs.stream, preset, cfg, seed, window_start)
    run.progress = load_checkpoint(checkpoint, run.model, run.optimizer, fingerprint, log)
    branching = branching or Branching()
    if run.progress.step == 0 and trunk is not None:  # (its own checkpoint wins)
        resume_from_trunk(run, trunk, preset, seed)
    elif run.progress.step == 0 and branching.start is not None:
        start = branching.start
        run.model.load_state_dict(start.model)
        # A copy: load_state_dict keeps the snapshot's tensors, which training updates in place,
        # and another cell may branch off the same snapshot after this one.
        run.optimizer.load_state_dict(copy.deepcopy(start.optimizer))
        run.progress = copy.deepcopy(start.progress)
        run.progress.inherited = inheritance("cell", start.cell, run.progress)
        print(f"branched off {start.cell} at step {start.step} (identical so far)", file=log)
    started, resumed_at = time.perf_counter(), run.progress.step
    train_steps(run, run.data.steps, checkpoint, fingerprint, branching.keep)
    final = final_test(run.model, inputs.test_shards, run.manifests, cfg.final_eval_blocks,
                       run.device)  # fmt: skip
    metrics = write_outputs(
        run.model, run.progress, run.data, cfg, run.device, preset, seed, cell, threads,
        inputs.tokenizer, out_dir, final, window_start, len(run.eval_sets),
    )  # fmt: skip
    metrics.update(resumed_at_step=resumed_at, wall_seconds=time.perf_counter() - started)
    if pack is not None:
        metrics["pack"] = pack
    metrics["inherited"] = run.progress.inherited  # (kept in its checkpoints, if killed)
    write_json(out_dir / "metrics.json", metrics)
    checkpoint.unlink(missing_ok=True)
    return metrics


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


def log_progress(progress: Progress, total_steps: int, loss: float, optimizer, log: TextIO) -> None:
    """One progress line: step, loss, learning rate, tokens/s and the time left."""
    rate = progress.tokens_seen / max(progress.train_seconds, 1e-9)
    eta = (total_steps - progress.step) * progress.train_seconds / max(progress.step, 1)
    print(
        f"step {progress.step}/{total_steps} loss {loss:.4f} "
        f"lr {optimizer.param_groups[0]['lr']:.2e} {rate:,.0f} tokens/s ETA {eta:.0f}s",
        file=log,
        flush=True,
    )
