"""What a finished run writes: its model (Hugging Face layout, safetensors), its learning curve,
and its metrics (throughput, size, FLOPs, memory, where it ran, the learning rate each domain
was trained at). Written for every cell by `curriculab.training.cell.finish`, however it was
trained.
"""

from __future__ import annotations

import os
import platform
import resource
from pathlib import Path
from typing import Any

import polars as pl
import torch

from curriculab.data.pretrained import end_of_document_token
from curriculab.data.tokenizer import END_OF_DOCUMENT
from curriculab.io import atomic_path
from curriculab.streams.summary import BARCODE_BINS
from curriculab.training.devices import peak_bf16_flops
from curriculab.training.lr import exposure, lr_by_bin, lr_per_position, lr_record
from curriculab.training.model import count_parameters, model_flops_per_token
from curriculab.training.run import Run


def write_outputs(run: Run, final: dict[str, dict[str, Any]], threads: int) -> dict[str, Any]:
    """Save the run's model and learning curve to its out_dir; its metrics (not yet written)."""
    cfg, data, progress, window_start = run.cfg, run.data, run.progress, run.window_start
    out_dir = run.job.out_dir
    save_model(run.model, run.job.inputs.tokenizer, out_dir / "model")
    with atomic_path(out_dir / "curve.parquet") as tmp:
        pl.DataFrame(progress.curve).write_parquet(tmp)
    metrics = run_metrics(run, threads)
    n_domains = len(run.eval_sets)
    metrics["final_curve_loss"] = {r["domain"]: r["loss"] for r in progress.curve[-n_domains:]}
    metrics["final_test"] = final
    lrs = lr_per_position(len(data.blocks), cfg.batch_size, cfg, window_start)
    metrics["window_start"] = window_start
    metrics["lr_curve"] = lr_record(data.steps, cfg, window_start)  # for the audit
    metrics["stream_sha256"] = data.stream_sha256
    metrics["exposure"] = exposure(data.domains, data.names, lrs, cfg.lr)
    metrics["lr_by_bin"] = lr_by_bin(lrs, cfg.lr, BARCODE_BINS)
    return metrics


def job_placement() -> dict[str, str | None]:
    """Where the job ran: host, and the SLURM job and GPUs it was given (None outside SLURM)."""
    return {
        "host": platform.node(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }


def run_metrics(run: Run, threads: int) -> dict[str, Any]:
    """Throughput, size, FLOPs per token, peak memory and (on CUDA) model FLOPs utilisation."""
    model, progress, data, cfg, device = run.model, run.progress, run.data, run.cfg, run.device
    rate = progress.tokens_seen / max(progress.train_seconds, 1e-9)
    per_token = model_flops_per_token(model, data.seq_len)
    metrics: dict[str, Any] = {
        "cell": run.label,
        "preset": run.preset,
        "device": device.type,
        "seed": run.job.seed,
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
    from transformers.utils import logging

    logging.disable_progress_bar()  # no "Writing model shards" bars in the job's log

    eod = end_of_document_token(tokenizer_path, END_OF_DOCUMENT)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=str(tokenizer_path), eos_token=eod, bos_token=eod
    )
    with atomic_path(model_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
