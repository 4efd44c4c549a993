"""Packed against unpacked training, and both against this machine's matmul bound.

For each preset and pack size P, in one process and alternating (unpacked, packed, unpacked,
packed, ...):
- unpacked: P cells trained one after another by the unbatched loop (`train.train_step`), as
  P separate jobs would run them on the same cores;
- packed: the same P cells (own seeds, own streams, own AdamW) trained together, every step
  one batched computation (`curriculab.training.batched`).
Summed tokens/s = all P cells' trained tokens over the wall time of their steps. The bound is
the FLOP/s of one large fp32 matmul on the same threads (`--threads`), measured in the same
run; `of bound` = tokens/s x training FLOPs per token / bound.

    python bench/bench_pack.py --presets tiny small 5m --packs 1 4 16 --steps 12
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_train import TRAIN, make_data, matmul_flops, provenance

from curriculab.config import train_config
from curriculab.training.batched import PackModel, _batched_step
from curriculab.training.cell import open_run
from curriculab.training.devices import setup_runtime
from curriculab.training.model import build_model, model_flops_per_token
from curriculab.training.optim import train_step
from curriculab.training.run import CellJob, Run


def cells(inputs, preset, p, args, cfg, device) -> list[Run]:
    """P runs at step 0 (own seeds), opened as the training loop opens them."""
    shapes = {"d": {"vocab_size": args.vocab, "seq_len": args.seq_len}}
    jobs = [CellJob(f"c{seed}", inputs, cfg, seed, Path("."), None) for seed in range(p)]
    return [open_run(job, preset, device, shapes, sys.stderr, None) for job in jobs]


def run_unpacked(group: list[Run], args, device) -> float:
    """Seconds for args.steps steps of every cell, one cell after another."""
    start = time.perf_counter()
    for cell in group:
        for step in range(args.steps):
            loss = train_step(cell.model, cell.optimizer, cell.data.batch(step), 1,
                              cell.cfg, device)  # fmt: skip
        float(loss)
    return time.perf_counter() - start


def run_packed(group: list[Run], pack: PackModel, args, device) -> float:
    """Seconds for args.steps steps of every cell, all cells in each step together."""
    start = time.perf_counter()
    for step in range(args.steps):
        batch = [(cell, cell.data.batch(step)) for cell in group]
        losses = _batched_step(pack, batch, step, 1, device)
    float(next(iter(losses.values())))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "small", "5m"])
    parser.add_argument("--packs", nargs="+", type=int, default=[1, 4, 16])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--vocab", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--out", type=Path, default=Path("bench/results/pack_cpu.json"))
    args = parser.parse_args()
    cfg = replace(train_config(TRAIN), batch_size=args.batch_size, lr_schedule="constant")
    device = setup_runtime(args.threads, args.device)
    bound = matmul_flops(device)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        inputs = make_data(Path(tmp), (args.steps + 1) * args.batch_size, args.seq_len, args.vocab)
        for preset in args.presets:
            per_token = model_flops_per_token(build_model(preset, args.vocab, args.seq_len, 0),
                                        args.seq_len)  # fmt: skip
            for p in args.packs:
                group = cells(inputs, preset, p, args, cfg, device)
                pack = PackModel([c.model for c in group])
                warm = argparse.Namespace(**{**vars(args), "steps": 1})
                run_unpacked(group, warm, device)  # warm-up, both paths
                run_packed(group, pack, warm, device)
                unpacked, packed = [], []
                for _ in range(args.repeats):
                    unpacked.append(run_unpacked(group, args, device))
                    packed.append(run_packed(group, pack, args, device))
                tokens = p * args.steps * args.batch_size * args.seq_len
                row = {
                    "preset": preset,
                    "cells": p,
                    "unpacked_tokens_per_s": tokens / statistics.median(unpacked),
                    "packed_tokens_per_s": tokens / statistics.median(packed),
                    "flops_per_token": per_token,
                }
                row["speedup"] = row["packed_tokens_per_s"] / row["unpacked_tokens_per_s"]
                row["unpacked_of_bound"] = row["unpacked_tokens_per_s"] * per_token / bound
                row["packed_of_bound"] = row["packed_tokens_per_s"] * per_token / bound
                rows.append(row)
                print(f"{preset:6} P={p:3} unpacked {row['unpacked_tokens_per_s']:>11,.0f} "
                      f"packed {row['packed_tokens_per_s']:>11,.0f} tokens/s "
                      f"x{row['speedup']:.2f}  of bound {row['unpacked_of_bound']:.1%} -> "
                      f"{row['packed_of_bound']:.1%}", flush=True)  # fmt: skip
    result = {
        **provenance("packed vs unpacked training (summed tokens/s) and the matmul bound"),
        "device": str(device),
        "threads": args.threads,
        "matmul_flops": bound,
        "steps": args.steps,
        "batch_tokens": args.batch_size * args.seq_len,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
