"""What each rank of a data-parallel cell runs under torchrun (`training.distributed.launch`):
the pack's arguments from a file, `loop.train_pack`, and rank 0's metrics back beside it."""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from curriculab.training.distributed import is_writer, rank_world
from curriculab.training.loop import train_pack


def die_with_launcher() -> None:
    """torchrun starts each rank in a session of its own, so a killed job (SIGKILL: nothing can
    clean up) would leave its ranks training on as orphans, finishing the cell and removing the
    checkpoint the rerun should resume from. On Linux a rank is killed with its launcher
    (prctl PR_SET_PDEATHSIG), as one process would be."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    if os.getppid() == 1:  # the launcher died before the line above
        os._exit(1)


def main(path: str) -> None:
    """One rank: train the pack in `path`; rank 0 leaves its metrics beside it."""
    die_with_launcher()
    payload = pickle.loads(Path(path).read_bytes())
    world = rank_world()[1]
    payload["threads"] = max(1, payload.get("threads", 1) // world)  # the job's cores, shared
    if torch.cuda.is_available() and payload["jobs"][0].cfg.device != "cpu":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    results = train_pack(**payload)
    if is_writer():
        Path(path).with_suffix(".out.pkl").write_bytes(pickle.dumps(results))
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
