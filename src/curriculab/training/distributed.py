"""One cell on several processes: data parallel with torch.distributed, launched by torchrun
(study key `resources.train.processes`; docs/stages/training.md).

Every rank holds the whole model and optimiser and reads the same ordered stream. At every step
rank r computes the gradients of micro-batches r, r + N, r + 2N, ... of the global batch the
single process would take (each divided by the global number of micro-batches), the gradients
and the loss are summed across the ranks (all_reduce), and every rank takes the same clipped
AdamW step. The run is the single-process run up to the order in which floating-point sums are
taken. Rank 0 alone writes (progress lines, checkpoints, the curve, the model, metrics.json);
every rank resumes from the same checkpoint. gloo on the CPU, NCCL on CUDA (one GPU per rank,
its local rank). A batched pack stays a single-process feature.

`launch` runs `python -m torch.distributed.run --standalone --nproc_per_node N -m
curriculab.training.torchrun <pack file>` from the training job; each rank trains the pack
with `loop.train_pack` (`training/torchrun.py`).
"""

from __future__ import annotations

import functools
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from curriculab.errors import CurriculabError


class DistributedError(CurriculabError, RuntimeError):
    """A rank of a data-parallel cell failed."""


@functools.cache
def rank_world() -> tuple[int, int]:
    """(this process's rank, the number of processes): (0, 1) outside torchrun. Read once per
    process (torchrun sets it before the rank starts), so the training step pays nothing."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def is_writer() -> bool:
    """Whether this process writes the run's files (rank 0, or the only process)."""
    return rank_world()[0] == 0


def backend(device: torch.device) -> str:
    """The collective backend of a device: NCCL on CUDA, gloo on the CPU."""
    return "nccl" if device.type == "cuda" else "gloo"


def start(device: torch.device) -> None:
    """Join the process group (`backend`) when there is more than one process."""
    if rank_world()[1] > 1 and not dist.is_initialized():
        dist.init_process_group(backend(device))


def reduce_gradients(model: torch.nn.Module, total: torch.Tensor, world: int) -> None:
    """Sum every gradient and the step's loss across the `world` ranks (a rank whose
    micro-batches left a parameter without a gradient contributes zeros)."""
    if world == 1:
        return
    for parameter in model.parameters():
        if parameter.requires_grad:
            if parameter.grad is None:
                parameter.grad = torch.zeros_like(parameter)
            dist.all_reduce(parameter.grad)
    dist.all_reduce(total)


def launch(payload: dict[str, Any], processes: int, scratch: Path) -> list[dict[str, Any]]:
    """Train `payload` (loop.train_pack's arguments) on `processes` ranks; rank 0's metrics.
    `scratch`: a folder for the pack file and rank 0's results (removed afterwards)."""
    scratch.mkdir(parents=True, exist_ok=True)
    job, out = scratch / "pack.pkl", scratch / "pack.out.pkl"
    job.write_bytes(pickle.dumps(payload))
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc_per_node={processes}", "-m", "curriculab.training.torchrun", str(job),
    ]  # fmt: skip
    try:
        # The ranks' progress and errors go where this job's go (its log, under Snakemake).
        done = subprocess.run(command, check=False, stdout=sys.stderr, stderr=sys.stderr)
        if done.returncode != 0 or not out.exists():
            raise DistributedError(
                f"data-parallel training on {processes} processes failed (exit {done.returncode}); "
                "each rank's error is in the job's log above"
            )
        return pickle.loads(out.read_bytes())
    finally:
        job.unlink(missing_ok=True)
        out.unlink(missing_ok=True)
