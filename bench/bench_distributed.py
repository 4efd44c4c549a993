"""Benchmark: one cell on two CPU processes (resources.train.processes: 2, gloo, torchrun)
against the same cell on one process, with the same global batch, through the real workflow.

Each side is a fresh study folder run by Snakemake on `--cores 2`: one process with two torch
threads, or two processes with one thread each. The cell trains `--tokens` tokens in steps of
16 sequences as 4 micro-batches (two per rank), so the ranks sum their gradients in another
order than the single process: the losses agree to float32 rounding, not bit for bit. Recorded:
every curve point's loss on both sides and their largest difference, the final test losses,
and each side's training tokens per second (`metrics.json`), in bench/results/distributed.json.

    .venv/bin/python bench/bench_distributed.py [--tokens 400000] [--preset small]
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import polars as pl
import yaml
from machine import machine_info, machine_line

ROOT = Path(__file__).resolve().parents[1]
CELL = "results/training/0.3/shuffled/cosine/seed0"


def config(tokens: int, preset: str, processes: int, cpus: int = 2) -> dict[str, Any]:
    synthetic = {"type": "synthetic"}
    return {
        "study": f"distributed_{processes}",
        "target_domain": "cooking",
        "domains": {
            "cooking": {"source": {**synthetic, "topic": "cooking", "n_docs": 400}},
            "history": {"source": {**synthetic, "topic": "history", "n_docs": 1200}},
        },
        "prepare": {"test_fraction": 0.2, "min_chars": 20},
        "tokenizer": {"vocab_size": 512},
        "shards": {"seq_len": 64},
        "streams": {"budget": "fixed_tokens", "tokens": tokens, "max_epochs": 100},
        "grid": {"ratios": [0.3], "schedules": {"shuffled": {"family": "shuffled"}}, "seeds": [0]},
        "model": {"preset": preset},
        "train": {
            "batch_size": 16,
            "micro_batch_size": 4,
            "lr": 0.003,
            "warmup_fraction": 0.05,
            "min_lr_fraction": 0.1,
            "weight_decay": 0.0,
            "grad_clip": 1.0,
            "eval_points": 10,
            "eval_blocks": 32,
            "final_eval_blocks": 64,
            "log_every_steps": 50,
            "device": "cpu",
        },
        "resources": {"train": {"cpus": cpus, "processes": processes}},
    }


def run_side(root: Path, tokens: int, preset: str, processes: int, cpus: int = 2) -> dict[str, Any]:
    workdir = root / f"p{processes}c{cpus}"
    workdir.mkdir()
    (workdir / "config.yaml").write_text(yaml.safe_dump(config(tokens, preset, processes, cpus)))
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
               "--directory", str(workdir), "--cores", "2", f"{CELL}/metrics.json"]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True)
    metrics = json.loads((workdir / CELL / "metrics.json").read_text())
    curve = pl.read_parquet(workdir / CELL / "curve.parquet").sort("step", "domain")
    return {"metrics": metrics, "curve": curve}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=400_000)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--out", default=str(ROOT / "bench/results/distributed.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        one = run_side(Path(tmp), args.tokens, args.preset, 1)
        two = run_side(Path(tmp), args.tokens, args.preset, 2)
        one_thread = run_side(Path(tmp), args.tokens, args.preset, 1, cpus=1)
    difference = (one["curve"]["loss"] - two["curve"]["loss"]).abs()
    # The control: the same single process on one thread instead of two, which changes only
    # the order of floating-point sums inside the matmuls.
    threads_only = (one["curve"]["loss"] - one_thread["curve"]["loss"]).abs()
    final = {
        domain: [result["loss"], two["metrics"]["final_test"][domain]["loss"]]
        for domain, result in one["metrics"]["final_test"].items()
    }
    sides = {}
    for name, side in (("one_process", one), ("two_processes", two)):
        m = side["metrics"]
        sides[name] = {
            k: m[k] for k in ("steps", "tokens_seen", "train_seconds", "tokens_per_second")
        }
    result = {
        "benchmark": "one cell on two CPU processes against one, the same global batch",
        "command": shlex.join([".venv/bin/python", "bench/bench_distributed.py", *sys.argv[1:]]),
        "machine": machine_info(("torch",)),
        "preset": args.preset,
        "curve": one["curve"]
        .select(
            "step",
            "domain",
            one["curve"]["loss"].alias("one_process"),
            two["curve"]["loss"].alias("two_processes"),
        )
        .to_dicts(),
        "largest_curve_difference": float(difference.max()),
        "largest_curve_difference_one_vs_two_threads": float(threads_only.max()),
        "final_test_loss_one_thread": {
            d: r["loss"] for d, r in one_thread["metrics"]["final_test"].items()
        },
        "final_test_loss": final,
        **sides,
        "speedup": two["metrics"]["tokens_per_second"] / one["metrics"]["tokens_per_second"],
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(machine_line(result["machine"]))
    print(
        f"curve points {len(result['curve'])}, largest loss difference "
        f"{result['largest_curve_difference']:.2e} nats/token (one process on 1 thread against "
        f"2: {result['largest_curve_difference_one_vs_two_threads']:.2e})"
    )
    for name in ("one_process", "two_processes"):
        print(
            f"{name}: {sides[name]['tokens_per_second']:,.0f} tokens/s "
            f"({sides[name]['train_seconds']:.1f} s training)"
        )
    print(f"speedup {result['speedup']:.2f}x; wrote {args.out}")


if __name__ == "__main__":
    main()
