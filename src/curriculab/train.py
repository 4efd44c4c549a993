"""One training run (a cell): read the stream, train the model, evaluate along the way.

Read it top to bottom:
1. runtime: threads, determinism, TF32 and the device (CUDA when present, CPU otherwise);
2. inputs: memory-mapped shards, gathered in stream order into (micro-)batches;
3. the loop: AdamW with a learning-rate schedule (`lr_at`), gradient accumulation to the token
   batch, gradient clipping, bf16 autocast and torch.compile on CUDA;
4. held-out loss of every domain at log- or evenly-spaced steps (the learning curve);
5. checkpoints every N steps, so a killed job resumes where it stopped with identical results.
"""

from __future__ import annotations

import math
import os
import platform
import resource
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import polars as pl
import torch

from curriculab.config import TrainConfig
from curriculab.data.shards import read_blocks, verify_shard, verify_tokenizer
from curriculab.data.tokenizer import END_OF_DOCUMENT
from curriculab.devices import claim_device, peak_bf16_flops
from curriculab.errors import CurriculabError
from curriculab.evaluate import bits_per_byte, mean_loss, spread_subset
from curriculab.io import atomic_path, read_json, sha256_file, write_json
from curriculab.model import build_model, count_parameters, flops_per_token
from curriculab.streams.stream_file import read_stream


class TrainingError(CurriculabError, RuntimeError):
    """Training cannot go on (e.g. a non-finite loss)."""


@dataclass(frozen=True)
class CellInputs:
    """Files one cell reads; every mapping is keyed by domain name."""

    stream: Path
    train_shards: dict[str, Path]
    test_shards: dict[str, Path]
    manifests: dict[str, Path]
    tokenizer: Path


# --- schedules of the run -------------------------------------------------------------------


def lr_at(step: int, total_steps: int, cfg: TrainConfig) -> float:
    """Learning rate at `step`.

    (1) linear warmup over warmup_fraction of the steps, then
    (2) cosine or linear decay to min_lr_fraction * lr, a constant lr, or WSD: constant until
        the final decay_fraction of the steps, then linear decay to the floor.
    """
    warmup = max(1, round(cfg.warmup_fraction * total_steps))
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    floor = cfg.min_lr_fraction * cfg.lr
    if cfg.lr_schedule == "constant":
        return cfg.lr
    if cfg.lr_schedule == "wsd":
        decay_start = max(warmup, total_steps - round(cfg.decay_fraction * total_steps))
        if step < decay_start:
            return cfg.lr
        progress = (step + 1 - decay_start) / max(1, total_steps - decay_start)
        return cfg.lr - (cfg.lr - floor) * min(progress, 1.0)
    progress = min((step - warmup) / max(1, total_steps - 1 - warmup), 1.0)
    if cfg.lr_schedule == "linear":
        return cfg.lr - (cfg.lr - floor) * progress
    return floor + 0.5 * (cfg.lr - floor) * (1 + math.cos(math.pi * progress))


def eval_steps(total_steps: int, eval_points: int, spacing: str = "linear") -> list[int]:
    """Steps after which to evaluate: 0 (the initial model), `eval_points` more, and the end.

    Log spacing resolves the fast early drop and still reaches the end; linear spacing gives
    even coverage, which suits schedules that change late (a D1 window at the end).
    """
    if spacing == "log":
        spaced = np.geomspace(1, max(total_steps, 1), eval_points)
    else:
        spaced = np.linspace(0, total_steps, eval_points + 1)
    return sorted({0, total_steps, *np.round(spaced).astype(int).tolist()})


# --- data -----------------------------------------------------------------------------------


class StreamBatches:
    """Token batches in stream order, gathered from memory-mapped shards (no tokens copied
    until a batch is built; on CUDA the batch is pinned and moved without blocking)."""

    def __init__(self, inputs: CellInputs, batch_size: int, device: torch.device) -> None:
        names, self.domains, self.blocks = read_stream(inputs.stream)
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
    """AdamW; no weight decay on norms and biases (1-D tensors); fused kernels on CUDA."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95), fused=device.type == "cuda")


def wants_compile(cfg: TrainConfig, device: torch.device) -> bool:
    """torch.compile pays off on CUDA; on CPU its compile time exceeds a short run's gain."""
    return cfg.compile == "on" or (cfg.compile == "auto" and device.type == "cuda")


# --- checkpoints ----------------------------------------------------------------------------


@dataclass
class Progress:
    """Where a run is: everything besides weights and optimizer needed to resume it."""

    step: int = 0
    tokens_seen: int = 0
    train_seconds: float = 0.0
    curve: list[dict[str, Any]] | None = None


def verify_inputs(inputs: CellInputs) -> None:
    """Every shard matches its manifest's sha256, and the tokenizer is the shards' tokenizer."""
    for name, manifest in sorted(inputs.manifests.items()):
        verify_shard(inputs.train_shards[name], manifest, "train")
        verify_shard(inputs.test_shards[name], manifest, "test")
    verify_tokenizer(
        inputs.tokenizer, [inputs.manifests[name] for name in sorted(inputs.manifests)]
    )


def run_fingerprint(inputs: CellInputs, preset: str, cfg: TrainConfig, seed: int) -> str:
    """Identifies what a checkpoint belongs to; a checkpoint of other settings is ignored."""
    parts = [preset, str(seed), repr(sorted(asdict(cfg).items())), sha256_file(inputs.stream)]
    return "|".join(parts)


def save_checkpoint(path: Path, model, optimizer, progress: Progress, fingerprint: str) -> None:
    """Weights, optimizer, progress and RNG states, written atomically."""
    state = {
        "fingerprint": fingerprint,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "progress": asdict(progress),
        "rng_cpu": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path, model, optimizer, fingerprint: str, log: TextIO) -> Progress:
    """Restore a matching checkpoint into model and optimizer; a fresh Progress otherwise."""
    if not path.exists():
        return Progress(curve=[])
    try:  # weights_only: tensors and plain containers; unpickling never runs code
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise TrainingError(
            f"{path}: not a checkpoint that loads safely ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}); delete it to restart the cell"
        ) from None
    if state["fingerprint"] != fingerprint:
        print(f"ignoring {path}: it belongs to other settings or another stream", file=log)
        return Progress(curve=[])
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["rng_cpu"])
    if state["rng_cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng_cuda"])
    progress = Progress(**state["progress"])
    print(f"resumed from {path} at step {progress.step}", file=log, flush=True)
    return progress


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


def train_cell(
    inputs: CellInputs,
    preset: str,
    cfg: TrainConfig,
    seed: int,
    cell: str,
    out_dir: Path,
    threads: int = 1,
    log: TextIO = sys.stderr,
) -> dict[str, Any]:
    """Train one cell; write model/ (safetensors), curve.parquet and metrics.json to out_dir.

    A checkpoint in out_dir/checkpoint.pt (every cfg.checkpoint_every steps) is resumed from
    when the run is started again with the same settings, and removed when the run is done.
    """
    verify_inputs(inputs)
    device = setup_runtime(threads, cfg.device)
    manifests = {name: read_json(path) for name, path in inputs.manifests.items()}
    shapes = next(iter(manifests.values()))  # every shard shares tokenizer and seq_len
    model = build_model(preset, shapes["vocab_size"], shapes["seq_len"], seed).to(device)
    optimizer = make_optimizer(model, cfg, device)
    checkpoint = out_dir / "checkpoint.pt"
    fingerprint = run_fingerprint(inputs, preset, cfg, seed)
    progress = load_checkpoint(checkpoint, model, optimizer, fingerprint, log)
    forward = torch.compile(model) if wants_compile(cfg, device) else model
    data = StreamBatches(inputs, cfg.batch_size, device)
    accumulation = max(1, cfg.batch_size // (cfg.micro_batch_size or cfg.batch_size))
    eval_sets = {
        name: blocks[spread_subset(len(blocks), cfg.eval_blocks)]
        for name, blocks in ((n, read_blocks(p)) for n, p in sorted(inputs.test_shards.items()))
    }
    evaluate_at = set(eval_steps(data.steps, cfg.eval_points, cfg.eval_spacing))

    def record(step: int) -> None:
        for name, blocks in eval_sets.items():
            loss = mean_loss(model, blocks, device)
            bpt = manifests[name]["splits"]["test"]["bytes_per_token"]
            progress.curve.append(
                {
                    "step": step,
                    "tokens_seen": progress.tokens_seen,
                    "domain": name,
                    "loss": loss,
                    "bits_per_byte": bits_per_byte(loss, bpt),
                }
            )

    if progress.step == 0:
        record(0)
    model.train()
    first_bad = torch.full((), -1, device=device)  # first step with a non-finite loss
    started, resumed_at = time.perf_counter(), progress.step
    for step in range(progress.step, data.steps):
        tick = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, data.steps, cfg)
        tokens = data.batch(step)
        loss = train_step(forward, optimizer, tokens, accumulation, cfg, device)
        first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss), step, first_bad)
        progress.step, progress.tokens_seen = step + 1, progress.tokens_seen + tokens.numel()
        last = step + 1 == data.steps
        saving = bool(cfg.checkpoint_every) and (step + 1) % cfg.checkpoint_every == 0 and not last
        logging = (step + 1) % cfg.log_every_steps == 0 or last
        if logging or saving or step + 1 in evaluate_at:  # the host waits for the device here
            if first_bad.item() >= 0:
                raise TrainingError(f"cell {cell}: non-finite loss at step {first_bad.item()}")
            if device.type == "cuda":
                torch.cuda.synchronize()
        progress.train_seconds += time.perf_counter() - tick
        if logging:
            log_progress(progress, data.steps, loss.item(), optimizer, log)
        if step + 1 in evaluate_at:
            record(step + 1)
        if saving:
            save_checkpoint(checkpoint, model, optimizer, progress, fingerprint)

    save_model(model, inputs.tokenizer, out_dir / "model")
    with atomic_path(out_dir / "curve.parquet") as tmp:
        pl.DataFrame(progress.curve).write_parquet(tmp)
    metrics = run_metrics(model, progress, data, cfg, device, preset, seed, cell, threads)
    metrics.update(resumed_at_step=resumed_at, wall_seconds=time.perf_counter() - started)
    metrics["final_curve_loss"] = {
        r["domain"]: r["loss"] for r in progress.curve[-len(eval_sets) :]
    }
    write_json(out_dir / "metrics.json", metrics)
    checkpoint.unlink(missing_ok=True)
    return metrics


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


def job_placement() -> dict[str, str | None]:
    """Where the job ran: host, and the SLURM job and GPUs it was given (None outside SLURM)."""
    return {
        "host": platform.node(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }


def run_metrics(
    model, progress: Progress, data: StreamBatches, cfg, device, preset, seed, cell, threads
) -> dict[str, Any]:
    """Throughput, size, FLOPs per token, peak memory and (on CUDA) model FLOPs utilisation."""
    rate = progress.tokens_seen / max(progress.train_seconds, 1e-9)
    per_token = flops_per_token(model, data.seq_len)
    metrics: dict[str, Any] = {
        "cell": cell,
        "preset": preset,
        "device": device.type,
        "seed": seed,
        "threads": threads,
        "n_params": count_parameters(model),
        "flops_per_token": per_token,
        "steps": data.steps,
        "tokens_seen": progress.tokens_seen,
        "batch_tokens": cfg.batch_size * data.seq_len,
        "train_seconds": progress.train_seconds,
        "tokens_per_second": rate,
        "step_seconds": progress.train_seconds / max(progress.step, 1),
        "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "placement": job_placement(),
    }
    if device.type == "cuda":
        peak = peak_bf16_flops(torch.cuda.get_device_name(device))
        metrics["device_name"] = torch.cuda.get_device_name(device)
        metrics["peak_memory_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
        metrics["mfu"] = rate * per_token / peak if peak else None
    return metrics


def save_model(model: torch.nn.Module, tokenizer_path: Path, model_dir: Path) -> None:
    """Save weights (safetensors) and tokenizer so `from_pretrained(model_dir)` loads both."""
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=str(tokenizer_path), eos_token=END_OF_DOCUMENT, bos_token=END_OF_DOCUMENT
    )
    with atomic_path(model_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
