"""Our training loop against the Hugging Face Trainer: same model, data and token batch.

Both train the same preset from the same initial weights on the same token blocks for the same
number of optimiser steps, in one process, alternating (ours, Trainer, ours, Trainer, ...), so
the machine's state affects both alike. The Trainer gets its best options for the device:
bf16, torch_compile and fused AdamW on CUDA; plain AdamW on the CPU, where those do not apply.
Throughput counts every trained token over the wall time of the steps (the Trainer's own
`train_runtime`; for ours, the loop including batch assembly). Both are also stated against
the bound: the FLOP/s of one large matmul on the same threads, measured in the same run
(tokens/s x training FLOPs per token / bound).

    python bench/bench_train.py --preset tiny --steps 60 --batch-size 16 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
import transformers

from curriculab.config import train_config
from curriculab.data.shards import write_blocks
from curriculab.io import write_arrow
from curriculab.streams.build import Order
from curriculab.streams.stream_file import stream_table
from curriculab.training.devices import setup_runtime
from curriculab.training.inputs import CellInputs, StreamBatches
from curriculab.training.lr import lr_at
from curriculab.training.model import build_model, count_parameters, model_flops_per_token
from curriculab.training.optim import make_optimizer
from curriculab.training.optim import train_step as our_step

TRAIN = {
    "batch_size": 16,
    "lr": 3e-3,
    "warmup_fraction": 0.05,
    "min_lr_fraction": 0.1,
    "weight_decay": 0.1,
    "grad_clip": 1.0,
    "eval_points": 1,
    "eval_blocks": 1,
}


def make_data(root: Path, n_blocks: int, seq_len: int, vocab: int) -> CellInputs:
    """A shard of random tokens and a stream over it (throughput does not depend on content)."""
    rng = np.random.default_rng(0)
    write_blocks(rng.integers(0, vocab, (n_blocks, seq_len), dtype=np.uint16), root / "d.arrow")
    order = Order(np.zeros(n_blocks, np.int32), np.arange(n_blocks), np.zeros(n_blocks, np.int32))
    write_arrow(stream_table(["d"], order), root / "stream.arrow")
    shards = {"d": root / "d.arrow"}
    return CellInputs(root / "stream.arrow", shards, shards, {}, root / "none")


def run_ours(inputs: CellInputs, args, cfg, device) -> float:
    """Tokens/s of our loop over args.steps optimiser steps."""
    model = build_model(args.preset, args.vocab, args.seq_len, seed=0).to(device)
    optimizer = make_optimizer(model, cfg, device)
    forward = torch.compile(model) if device.type == "cuda" else model
    data = StreamBatches(inputs, cfg.batch_size, device)
    model.train()
    start = time.perf_counter()
    for step in range(args.steps):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, args.steps, cfg)
        loss = our_step(forward, optimizer, data.batch(step), 1, cfg, device)
    float(loss)  # wait for the device
    return args.steps * cfg.batch_size * args.seq_len / (time.perf_counter() - start)


class BlockDataset(torch.utils.data.Dataset):
    """The same blocks, in the same order, as the Trainer's dataset."""

    def __init__(self, inputs: CellInputs) -> None:
        from curriculab.data.shards import read_blocks

        self.blocks = read_blocks(inputs.train_shards["d"])

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        ids = torch.from_numpy(self.blocks[i].astype(np.int64))
        return {"input_ids": ids, "labels": ids}


def run_trainer(inputs: CellInputs, args, cfg, device, out: Path) -> float:
    """Tokens/s of transformers.Trainer over the same steps, with its best device options."""
    model = build_model(args.preset, args.vocab, args.seq_len, seed=0)
    cuda = device.type == "cuda"
    training_args = transformers.TrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=cfg.batch_size,
        max_steps=args.steps,
        learning_rate=cfg.lr,
        lr_scheduler_type="cosine",
        warmup_steps=max(1, round(cfg.warmup_fraction * args.steps)),
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.grad_clip,
        adam_beta2=0.95,
        logging_strategy="no",
        save_strategy="no",
        report_to=[],
        seed=0,
        dataloader_num_workers=0,
        use_cpu=not cuda,
        bf16=cuda,
        torch_compile=cuda,
        optim="adamw_torch_fused" if cuda else "adamw_torch",
        disable_tqdm=True,
    )
    trainer = transformers.Trainer(
        model=model, args=training_args, train_dataset=BlockDataset(inputs)
    )
    result = trainer.train()
    return args.steps * cfg.batch_size * args.seq_len / result.metrics["train_runtime"]


def matmul_flops(device: torch.device, n: int = 2048, repeats: int = 10) -> float:
    """Best FLOP/s of an n x n fp32 (bf16 on CUDA) matmul: the bound for this device/threads."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        (a @ b).sum().item()
        best = max(best, 2 * n**3 / (time.perf_counter() - start))
    return best


def provenance(benchmark: str) -> dict[str, object]:
    """What a result file opens with: what was measured, the exact command, when, and where."""
    return {
        "benchmark": benchmark,
        "command": " ".join([sys.executable, *sys.argv]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
    }


def machine() -> dict[str, object]:
    """Where the figures were measured."""
    info: dict[str, object] = {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--vocab", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--out", type=Path, default=Path("bench/results/train_vs_trainer.json"))
    args = parser.parse_args()
    cfg = replace(train_config(TRAIN), batch_size=args.batch_size)
    device = setup_runtime(args.threads, args.device)
    ours, theirs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        inputs = make_data(Path(tmp), args.steps * args.batch_size, args.seq_len, args.vocab)
        for _ in range(args.repeats):
            ours.append(run_ours(inputs, args, cfg, device))
            theirs.append(run_trainer(inputs, args, cfg, device, Path(tmp) / "trainer"))
    model = build_model(args.preset, args.vocab, args.seq_len, seed=0)
    n_params, per_token = count_parameters(model), model_flops_per_token(model, args.seq_len)
    bound = matmul_flops(device)
    result = {
        **provenance("our loop vs transformers.Trainer (tokens/s, same model/data/batch/steps)"),
        "device": str(device),
        "threads": args.threads,
        "preset": args.preset,
        "n_params": n_params,
        "steps": args.steps,
        "batch_tokens": args.batch_size * args.seq_len,
        "ours_tokens_per_s": ours,
        "trainer_tokens_per_s": theirs,
        "ratio_median": statistics.median(ours) / statistics.median(theirs),
        "flops_per_token": per_token,
        "matmul_flops": bound,
        "ours_of_bound": statistics.median(ours) * per_token / bound,
        "trainer_of_bound": statistics.median(theirs) * per_token / bound,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    keys = ("preset", "n_params", "device", "ratio_median", "ours_of_bound", "trainer_of_bound")
    print(json.dumps({k: result[k] for k in keys}))
    print(f"ours    {statistics.median(ours):12,.0f} tokens/s  {ours}")
    print(f"Trainer {statistics.median(theirs):12,.0f} tokens/s  {theirs}")


if __name__ == "__main__":
    main()
