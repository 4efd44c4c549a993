"""Which device a training job uses, and what that device can do.

On a workstation with several GPUs, Snakemake runs training jobs side by side but does not set
CUDA_VISIBLE_DEVICES; each job therefore claims the first GPU whose lock file it can take, and
holds the lock until the process exits (a killed job releases it with its file descriptors).
Locks are named by GPU UUID, so jobs that see different GPUs under the same index (SLURM sets
CUDA_VISIBLE_DEVICES per job) never wait for each other.
When every GPU is taken, a job waits for one; `--resources gpu=N` avoids the wait by starting
no more GPU jobs than there are GPUs.
"""

from __future__ import annotations

import fcntl
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from curriculab.cost import PEAK_BF16

_HELD: list[int] = []  # lock file descriptors, kept open for the life of the process
_CLAIMED: list[torch.device] = []  # the GPU this process holds (the cells of a pack share it)


def claim_device(choice: str) -> torch.device:
    """'cpu', 'cuda' or 'auto' (CUDA when present) -> a device; CUDA picks a free GPU."""
    if choice == "cpu" or (choice == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError("train.device is 'cuda' but no CUDA device is available")
    if _CLAIMED:
        return _CLAIMED[0]
    lock_dir = Path(os.environ.get("CURRICULAB_GPU_LOCKS", tempfile.gettempdir()))
    waited = False
    while True:
        for index in range(torch.cuda.device_count()):
            if _try_lock(lock_dir / f"curriculab-gpu-{gpu_identity(index)}.lock"):
                torch.cuda.set_device(index)
                _CLAIMED.append(torch.device("cuda", index))
                return _CLAIMED[0]
        if not waited:
            print("all GPUs are taken by other training jobs; waiting for one", file=sys.stderr)
            waited = True
        time.sleep(2.0)


def gpu_identity(index: int) -> str:
    """A name for visible GPU `index` that is the same in every process on the node: its UUID.

    Under SLURM (or any CUDA_VISIBLE_DEVICES), two jobs on one node each see their own GPU as
    index 0; locking by index would make the second job wait for the first's GPU.
    """
    uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
    return str(uuid) if uuid is not None else f"index{index}"


def _try_lock(path: Path) -> bool:
    """Take an exclusive lock on `path` for the life of the process, if nobody holds it."""
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    _HELD.append(fd)
    return True


def peak_bf16_flops(device_name: str) -> float | None:
    """The device's dense bf16 peak in FLOP/s, or None when it is not in the table."""
    for key, peak in PEAK_BF16.items():
        if key in device_name:
            return peak
    return None


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
