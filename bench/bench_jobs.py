"""A pack of P cells in one job against P separate jobs, end to end (start-up included).

Each job is a fresh `python` process that imports what a training job imports, builds its
cells (own seeds, own AdamW) and trains them for `--steps` steps of the default study's shape:
- separate: P processes one after another, one cell each (one job per cell);
- serial: one process, the P cells one after another (`packing: serial`);
- batched: one process, the P cells in every step together (`packing: batched`).
Summed tokens/s = the P cells' tokens over the processes' total wall time, in the order
separate, serial, batched, repeated `--repeats` times.

    python bench/bench_jobs.py --preset tiny --cells 4 --steps 150 --threads 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path


def worker(args: argparse.Namespace) -> None:
    """One job: imports, cells, steps (run in a fresh process)."""
    import tempfile
    from dataclasses import replace

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_pack import cells, run_packed, run_unpacked
    from bench_train import TRAIN, make_data

    from curriculab.config import train_config
    from curriculab.training.batched import PackModel
    from curriculab.training.devices import setup_runtime

    cfg = replace(train_config(TRAIN), batch_size=8, lr_schedule="constant")
    device = setup_runtime(args.threads, "cpu")
    with tempfile.TemporaryDirectory() as tmp:
        inputs = make_data(Path(tmp), (args.steps + 1) * 8, 128, 1024)
        shape = argparse.Namespace(steps=args.steps, vocab=1024, seq_len=128)
        group = cells(inputs, args.preset, args.worker_cells, shape, cfg, device)
        if args.mode == "batched":
            run_packed(group, PackModel([c.model for c in group]), shape, device)
        else:
            run_unpacked(group, shape, device)


def job(args: argparse.Namespace, mode: str, cells: int) -> float:
    """Wall seconds of one job process."""
    command = [sys.executable, __file__, "--worker", mode, "--worker-cells", str(cells)]
    command += ["--preset", args.preset, "--steps", str(args.steps)]
    command += ["--threads", str(args.threads)]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--cells", type=int, default=4)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--worker", choices=["separate", "serial", "batched"])
    parser.add_argument("--worker-cells", type=int)
    parser.add_argument("--out", type=Path, default=Path("bench/results/pack_jobs.json"))
    args = parser.parse_args()
    if args.worker:
        args.mode = args.worker
        return worker(args)
    walls: dict[str, list[float]] = {"separate": [], "serial": [], "batched": []}
    for _ in range(args.repeats):
        walls["separate"].append(sum(job(args, "separate", 1) for _ in range(args.cells)))
        walls["serial"].append(job(args, "serial", args.cells))
        walls["batched"].append(job(args, "batched", args.cells))
    tokens = args.cells * args.steps * 8 * 128
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_train import provenance

    result = {
        **provenance("a pack of cells in one job vs one job per cell, end to end"),
        "preset": args.preset,
        "cells": args.cells,
        "steps": args.steps,
        "threads": args.threads,
        "wall_seconds": walls,
        "tokens_per_s": {mode: tokens / statistics.median(w) for mode, w in walls.items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for mode, rate in result["tokens_per_s"].items():
        print(f"{mode:9} {rate:>9,.0f} tokens/s summed  wall {walls[mode]}")


if __name__ == "__main__":
    main()
