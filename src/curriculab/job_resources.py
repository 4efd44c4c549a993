"""What each job asks of a scheduler: cores, memory, wall time and GPUs.

Snakemake hands these to its local scheduler (`--cores`, `--resources gpu=N`) and, through the
SLURM executor plugin, to `sbatch` (`--cpus-per-task`, `--mem`, `-t`, `--gpus`). Training and
evaluation estimate memory from the model preset and wall time from the cell's token count;
every other job is CPU-only with fixed requests (see rules/*.smk; override one with
`--set-resources RULE:mem_mb=...`).

The wall-time estimate is deliberately pessimistic (assumed throughputs well below what was
measured; see ASSUMED_*), and grows with each retry: a job that SLURM stops at its time limit
is resubmitted with a longer one and resumes from its last checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from curriculab.data.shards import block_counts
from curriculab.errors import ConfigError
from curriculab.io import read_json
from curriculab.streams.build import target_blocks_wanted
from curriculab.streams.schedules import BudgetSpec
from curriculab.training.model import (
    PRESETS,
    padded_vocab_size,
    parameter_count,
    preset_flops_per_token,
)


class Study(Protocol):
    """What sizing a job reads of a study (curriculab.config.Study has it; this module does
    not import config, which imports this module to parse `resources.train`)."""

    train: Any  # curriculab.config.TrainConfig
    resources: TrainResources
    domains: dict[str, Any]
    budget: BudgetSpec
    target_domain: str
    model_preset: str
    vocab_size: int
    seq_len: int


# Throughputs assumed for the wall-time estimate, several times below what was measured
# (tiny preset on one 2-core VM: ~2.3e10 FLOP/s per core; bench/results/).
ASSUMED_CPU_FLOPS_PER_CORE = 5e9
ASSUMED_GPU_FLOPS = 1e14  # about 10% of an H100's dense bf16 peak, 30% of an A100's
ASSUMED_GPU_TOKENS_PER_S = 2e5  # small models are bound by per-step overhead, not FLOPs
STARTUP_MIN = 5  # interpreter, torch import, data mapping, checkpoint and model writes
MIN_RUNTIME_MIN = 10
BASE_MEM_MB = 2048  # a CPU training job's RSS was ~620 MB; CUDA adds ~500 MB of host memory


@dataclass(frozen=True)
class TrainResources:
    """What a training (and evaluation) job asks for; None means 'estimate it'."""

    gpus: int = 0  # GPUs per job (0 or 1: the training loop uses one device)
    gpu_model: str | None = None  # GPU type as the cluster names it (sbatch --gpus=MODEL:N)
    cpus: int = 1  # cores per job: torch threads on the CPU, the batch loader on a GPU
    mem_mb: int | None = None  # memory per job; None: estimated from preset and batch
    runtime_min: int | None = None  # wall-time limit per cell; None: estimated from tokens
    cells_per_job: int = 8  # cells one training job trains (a pack; curriculab.training.packs)
    packing: str = "auto"  # serial: one cell after another; batched: all cells in each step;
    # auto: batched when the job trains on CUDA, serial on the CPU (bench/README.md)
    processes: int = 1  # processes per cell, data parallel (curriculab.training.distributed)


def blocks_from_manifests(manifests: dict[str, Path], split: str) -> dict[str, int] | None:
    """{domain: blocks of `split`} from the shard manifests, or None while any is not written."""
    try:
        return block_counts({name: read_json(path) for name, path in manifests.items()}, split)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def cell_sequences(
    budget: BudgetSpec, target: str, ratio: float, train_blocks: dict[str, int] | None
) -> int | None:
    """Training sequences of one cell: known from the config under fixed_tokens, from the
    shard block counts under fixed_data (None while the shards do not exist yet)."""
    if budget.kind == "fixed_tokens":
        return budget.total_blocks
    if train_blocks is None:
        return None
    others = sum(n for name, n in train_blocks.items() if name != target)
    return others + min(target_blocks_wanted(train_blocks, target, ratio), train_blocks[target])


def train_runtime_min(
    preset: str,
    vocab_size: int,
    seq_len: int,
    sequences: int | None,
    eval_sequences: int,
    on_gpu: bool,
    cpus: int,
    attempt: int = 1,
    fallback_min: int = 120,
) -> int:
    """Minutes to ask for: assumed-throughput time for training plus evaluation, twice over,
    plus start-up; `fallback_min` while the token count is unknown; doubled on each retry."""
    if sequences is None:
        return fallback_min * 2 ** (attempt - 1)
    per_token = preset_flops_per_token(preset, vocab_size, seq_len)
    flops = per_token * seq_len * (sequences + eval_sequences / 3)  # a forward pass is 1/3
    if on_gpu:
        tokens = seq_len * (sequences + eval_sequences)
        seconds = max(flops / ASSUMED_GPU_FLOPS, tokens / ASSUMED_GPU_TOKENS_PER_S)
    else:
        seconds = flops / (ASSUMED_CPU_FLOPS_PER_CORE * cpus)
    minutes = STARTUP_MIN + 2 * seconds / 60
    return max(MIN_RUNTIME_MIN, math.ceil(minutes)) * 2 ** (attempt - 1)


def train_mem_mb(
    preset: str, vocab_size: int, seq_len: int, micro_batch: int, on_gpu: bool, attempt: int = 1
) -> int:
    """Host memory to ask for, in MB (multiple of 512): the process, fp32 weights, gradients and
    AdamW state twice over (a checkpoint being written), and on the CPU the activations and
    logits of one micro-batch. Grows by half on each retry."""
    shape = PRESETS[preset]
    state = 16 * parameter_count(preset, vocab_size) * 2
    activations = 0
    if not on_gpu:
        per_token = 34 * shape.hidden_size * shape.num_layers + 12 * padded_vocab_size(vocab_size)
        activations = micro_batch * seq_len * per_token
    mb = (BASE_MEM_MB + (state + activations) / 2**20) * (1 + 0.5 * (attempt - 1))
    return 512 * math.ceil(mb / 512)


# --- the requests of one study's jobs (called from rules/common.smk) ---------------------------


def final_eval_blocks(study: Study, test_blocks: dict[str, int] | None) -> int:
    """Test blocks of the final evaluation, all domains together (an upper guess of 1,000 per
    domain while the shards do not exist yet and no cap is set)."""
    cap = study.train.final_eval_blocks
    if test_blocks is None:
        return len(study.domains) * (cap or 1000)
    return sum(n if cap is None else min(n, cap) for n in test_blocks.values())


def train_job_runtime_min(
    study: Study,
    ratio: float,
    train_blocks: dict[str, int] | None,
    test_blocks: dict[str, int] | None = None,
    attempt: int = 1,
    scale: tuple[int, str] | None = None,
) -> int:
    """Wall-time limit of one cell's training job (training, learning curve and the final
    evaluation), in minutes. `scale`: (tokens, preset) of a ladder cell, whose budget and model
    are its scale's (curriculab.ladder.plan), not the study's."""
    res = study.resources
    if res.runtime_min is not None:
        return res.runtime_min * 2 ** (attempt - 1)
    curve_points = study.train.eval_points + 2  # plus the evaluations at step 0 and at the end
    curve_blocks = curve_points * study.train.eval_blocks * len(study.domains)
    sequences = cell_sequences(study.budget, study.target_domain, ratio, train_blocks)
    if scale is not None:
        sequences = scale[0] // study.seq_len
    return train_runtime_min(
        scale[1] if scale else study.model_preset,
        study.vocab_size,
        study.seq_len,
        sequences,
        curve_blocks + final_eval_blocks(study, test_blocks),
        on_gpu=res.gpus > 0,
        cpus=res.cpus,
        attempt=attempt,
    )


def train_job_mem_mb(study: Study, attempt: int = 1, preset: str | None = None) -> int:
    """Memory of one cell's training job, in MB (`preset`: a ladder scale's model)."""
    res = study.resources
    if res.mem_mb is not None:
        return math.ceil(res.mem_mb * (1 + 0.5 * (attempt - 1)))
    micro_batch = study.train.micro_batch_size or study.train.batch_size
    return train_mem_mb(
        preset or study.model_preset,
        study.vocab_size,
        study.seq_len,
        min(micro_batch, study.train.batch_size),
        on_gpu=res.gpus > 0,
        attempt=attempt,
    )


def pack_runtime_min(
    study: Study,
    ratios: list[float],
    train_blocks: dict[str, int] | None,
    test_blocks: dict[str, int] | None = None,
    attempt: int = 1,
    scales: Sequence[tuple[int, str] | None] | None = None,
) -> int:
    """Wall-time limit of a pack's training job, in minutes: its cells' limits without their
    start-up, summed, plus one start-up (a batched pack is faster than this: its cells share
    each step's fixed costs). `scales`: per cell, a ladder cell's (tokens, preset) or None."""
    if study.resources.runtime_min is not None:
        return study.resources.runtime_min * len(ratios) * 2 ** (attempt - 1)
    scales = scales or [None] * len(ratios)
    per_cell = [
        train_job_runtime_min(study, r, train_blocks, test_blocks, scale=scale)
        for r, scale in zip(ratios, scales, strict=True)
    ]
    minutes = STARTUP_MIN + sum(m - STARTUP_MIN for m in per_cell)
    return max(MIN_RUNTIME_MIN, minutes) * 2 ** (attempt - 1)


def pack_mem_mb(study: Study, cells: int, attempt: int = 1, preset: str | None = None) -> int:
    """Memory of a pack's training job, in MB: one cell's on `packing: serial` (one model at a
    time; a shared-prefix snapshot adds at most one more), every cell's state and activations
    when batched (`batched`, or `auto` on a GPU job)."""
    one = train_job_mem_mb(study, attempt, preset)
    res = study.resources
    batched = res.packing == "batched" or (res.packing == "auto" and res.gpus > 0)
    if not batched or res.mem_mb is not None:
        return one
    base = BASE_MEM_MB * (1 + 0.5 * (attempt - 1))
    return 512 * math.ceil((base + cells * (one - base)) / 512)


def train_resources(raw: dict[str, Any], device: str, micro_batches: int = 1) -> TrainResources:
    """The typed `resources.train:` mapping; `gpus: null` follows `train.device` (`device`). A
    GPU request that training would not use, CUDA training without a GPU request, or more
    processes than the job's GPUs or cores (or than divide its `micro_batches` per step) is a
    ConfigError."""
    gpus = raw.get("gpus")
    if gpus is None:
        gpus = 1 if device == "cuda" else 0
    if gpus and device == "cpu":
        raise ConfigError(
            f"config key 'resources.train.gpus': {gpus} GPU requested but train.device is 'cpu'; "
            "set train.device to auto or cuda, or gpus to 0"
        )
    if not gpus and device == "cuda":
        raise ConfigError(
            "config key 'resources.train.gpus': 0, but train.device is 'cuda'; a job without a "
            "GPU cannot train on CUDA (set gpus to 1, or train.device to auto)"
        )
    if raw.get("gpu_model") and not gpus:
        raise ConfigError(
            f"config key 'resources.train.gpu_model': {raw['gpu_model']!r} is set but no GPU is "
            "requested (resources.train.gpus is 0)"
        )
    processes = raw.get("processes", 1)
    if processes > 1:
        room, what = (
            (gpus, "resources.train.gpus") if gpus else (raw.get("cpus", 1), "resources.train.cpus")
        )
        if processes > room:
            raise ConfigError(
                f"config key 'resources.train.processes': {processes} processes, but a job has "
                f"{room} ({what}); one process per GPU, or per core on the CPU"
            )
        if micro_batches % processes:
            raise ConfigError(
                f"config key 'resources.train.processes': {processes} processes cannot share "
                f"{micro_batches} micro-batches per step evenly (train.batch_size / "
                "train.micro_batch_size must be a multiple of it)"
            )
        if raw.get("packing") == "batched":
            raise ConfigError(
                "config key 'resources.train.processes': a batched pack trains in one process; "
                "set packing to serial (or auto) to train each cell on several"
            )
    return TrainResources(**{**raw, "gpus": gpus})
