"""One training run (a cell): read the stream, train the model, evaluate along the way.

Read it top to bottom: inputs are memory-mapped shards and the cell's stream; the loop is
warmup + cosine AdamW; held-out loss of every domain is measured at evenly spaced points.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import polars as pl
import torch

from curriculab.config import TrainConfig
from curriculab.data.shards import read_blocks
from curriculab.data.tokenizer import END_OF_DOCUMENT
from curriculab.evaluate import bits_per_byte, mean_loss, spread_subset
from curriculab.io import atomic_path, read_json, write_json
from curriculab.model import build_model, count_parameters
from curriculab.streams.stream_file import read_stream


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. a non-finite loss)."""


@dataclass(frozen=True)
class CellInputs:
    """Files one cell reads; every mapping is keyed by domain name."""

    stream: Path
    train_shards: dict[str, Path]
    test_shards: dict[str, Path]
    manifests: dict[str, Path]
    tokenizer: Path


def lr_at(step: int, total_steps: int, cfg: TrainConfig) -> float:
    """Learning rate at `step`: (1) linear warmup, (2) cosine decay to min_lr_fraction * lr."""
    warmup = max(1, round(cfg.warmup_fraction * total_steps))
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - warmup)
    floor = cfg.min_lr_fraction * cfg.lr
    return floor + 0.5 * (cfg.lr - floor) * (1 + math.cos(math.pi * min(progress, 1.0)))


def eval_steps(total_steps: int, eval_points: int) -> list[int]:
    """Steps after which to evaluate: 0 (the initial model) and `eval_points` evenly spaced."""
    spaced = np.linspace(0, total_steps, eval_points + 1).round().astype(int)
    return sorted(set(spaced.tolist()))


def pick_device(choice: str) -> torch.device:
    """'auto' means CUDA when present, else CPU."""
    if choice == "cuda" and not torch.cuda.is_available():
        raise TrainingError("train.device is 'cuda' but no CUDA device is available")
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(choice)


def batches(stream: Path, train_shards: dict[str, Path], batch_size: int) -> tuple[int, Any]:
    """(number of steps, generator of (B, T) int64 token batches in stream order)."""
    names, domains, blocks = read_stream(stream)
    shards = [read_blocks(train_shards[name]) for name in names]
    steps = math.ceil(len(blocks) / batch_size)

    def generate():
        for start in range(0, len(blocks), batch_size):
            rows = [
                shards[d][b]
                for d, b in zip(
                    domains[start : start + batch_size],
                    blocks[start : start + batch_size],
                    strict=True,
                )
            ]
            yield torch.from_numpy(np.stack(rows).astype(np.int64))  # (B, T)

    return steps, generate()


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
    """Train one cell; write model/ (safetensors), curve.parquet and metrics.json to out_dir."""
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    device = pick_device(cfg.device)
    manifests = {name: read_json(path) for name, path in inputs.manifests.items()}
    any_manifest = next(iter(manifests.values()))
    seq_len, vocab_size = any_manifest["seq_len"], any_manifest["vocab_size"]
    model = build_model(preset, vocab_size, seq_len, seed).to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=cfg.weight_decay
    )
    eval_sets = {
        name: blocks[spread_subset(len(blocks), cfg.eval_blocks)]
        for name, blocks in ((n, read_blocks(p)) for n, p in sorted(inputs.test_shards.items()))
    }
    total_steps, batch_iter = batches(inputs.stream, inputs.train_shards, cfg.batch_size)
    checkpoints = set(eval_steps(total_steps, cfg.eval_points))
    curve: list[dict[str, Any]] = []

    def record(step: int, tokens_seen: int) -> None:
        for name, blocks in eval_sets.items():
            loss = mean_loss(model, blocks, device)
            bpt = manifests[name]["splits"]["test"]["bytes_per_token"]
            curve.append(
                {
                    "step": step,
                    "tokens_seen": tokens_seen,
                    "domain": name,
                    "loss": loss,
                    "bits_per_byte": bits_per_byte(loss, bpt),
                }
            )

    record(0, 0)
    model.train()
    tokens_seen, train_seconds, started = 0, 0.0, time.perf_counter()
    for step, batch in enumerate(batch_iter):
        tick = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, total_steps, cfg)
        batch = batch.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = model(input_ids=batch, labels=batch).loss
        if not torch.isfinite(loss):
            raise TrainingError(f"cell {cell}: non-finite loss {loss.item()} at step {step}")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        tokens_seen += batch.numel()
        train_seconds += time.perf_counter() - tick
        if (step + 1) % cfg.log_every_steps == 0 or step + 1 == total_steps:
            rate = tokens_seen / train_seconds
            eta = (total_steps - step - 1) * train_seconds / (step + 1)
            print(
                f"step {step + 1}/{total_steps} loss {loss.item():.4f} "
                f"lr {optimizer.param_groups[0]['lr']:.2e} {rate:,.0f} tokens/s "
                f"ETA {eta:.0f}s",
                file=log,
                flush=True,
            )
        if step + 1 in checkpoints:
            record(step + 1, tokens_seen)

    save_model(model, inputs.tokenizer, out_dir / "model")
    with atomic_path(out_dir / "curve.parquet") as tmp:
        pl.DataFrame(curve).write_parquet(tmp)
    metrics = {
        "cell": cell,
        "preset": preset,
        "device": device.type,
        "seed": seed,
        "n_params": count_parameters(model),
        "steps": total_steps,
        "tokens_seen": tokens_seen,
        "train_seconds": train_seconds,
        "wall_seconds": time.perf_counter() - started,
        "tokens_per_second": tokens_seen / max(train_seconds, 1e-9),
        "threads": threads,
        "final_curve_loss": {r["domain"]: r["loss"] for r in curve[-len(eval_sets) :]},
    }
    write_json(out_dir / "metrics.json", metrics)
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
