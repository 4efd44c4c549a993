"""What a study will cost, before it runs: cells, tokens, training FLOPs, disk, and time on this
machine and on a named GPU (`curriculab plan`; docs/cost.md).

Every number comes from the code the run itself uses: a cell's sequences from its budget
(job_resources.cell_sequences: the config under fixed_tokens, the shard manifests under
fixed_data), its FLOPs per token from its preset (training.model.preset_flops_per_token, the
formula the outputs record), so that a finished study's recorded FLOPs add up to the plan
(tests/core/test_cost.py). Where the shards do not exist yet, a fixed_data cell's tokens are
unknown and the plan says so instead of guessing. A ladder cell counts its scale's preset and
tokens. Shared prefixes and trunks save part of the planned training (the report's cost
section shows what was spent), so the plan is an upper bound where a study uses them.

Torch-free: run before anything is installed on a GPU node, and read by the report.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from curriculab.job_resources import blocks_from_manifests, cell_sequences
from curriculab.training.model import parameter_count, preset_flops_per_token

# Dense bf16 tensor-core peak, FLOP/s, by a substring of torch.cuda.get_device_name().
PEAK_BF16 = {
    "H200": 989e12,
    "H100 PCIe": 756e12,
    "H100": 989e12,
    "A100": 312e12,
    "L40S": 362e12,
    "A10": 125e12,
    "RTX 4090": 165e12,
}
PLAN_GPUS = ("H100", "H200", "A100")  # the plan's table
DEFAULT_MFU = 0.40  # model FLOPs utilisation assumed on a GPU (stated beside every estimate)
BYTES_PER_PARAM_MODEL = 4  # fp32 safetensors of the saved model
BYTES_PER_PARAM_CHECKPOINT = 16  # fp32 weights, gradients-free: weights + AdamW's two moments
EVAL_FORWARD_SHARE = 1 / 3  # an evaluation token costs a forward pass: a third of a step's FLOPs


def _scale(study: Any, cell: dict[str, Any]) -> tuple[int | None, str]:
    """(tokens, preset) of a ladder cell (its scale's), else (None, the study's preset)."""
    ladder = getattr(study, "ladder", None)
    size = ladder.cell_size(cell["schedule"]) if ladder is not None else None
    return size if size is not None else (None, study.model_preset)


def cell_costs(
    study: Any, cells: list[dict[str, Any]], train_blocks: dict[str, int] | None
) -> list[dict[str, Any]]:
    """One row per cell: its tokens (None while unknown), FLOPs per token and training FLOPs."""
    rows = []
    for cell in cells:
        tokens, preset = _scale(study, cell)
        if tokens is None:
            ratio = study.ratio_value(cell["ratio"])
            sequences = cell_sequences(study.budget, study.target_domain, ratio, train_blocks)
            tokens = None if sequences is None else sequences * study.seq_len
        per_token = preset_flops_per_token(preset, study.vocab_size, study.seq_len)
        rows.append(
            {
                **cell,
                "preset": preset,
                "tokens": tokens,
                "flops_per_token": per_token,
                "flops": None if tokens is None else tokens * per_token,
                "parameters": parameter_count(preset, study.vocab_size),
            }
        )
    return rows


def plan(
    study: Any,
    cells: list[dict[str, Any]],
    manifests: dict[str, Path] | None = None,
    mfu: float = DEFAULT_MFU,
    cpu_flops: float | None = None,
) -> dict[str, Any]:
    """The study's plan: totals, disk, and hours on each of PLAN_GPUS at `mfu` (and on this
    machine at `cpu_flops` achieved FLOP/s, when given)."""
    train_blocks = blocks_from_manifests(manifests, "train") if manifests else None
    rows = cell_costs(study, cells, train_blocks)
    known = [r for r in rows if r["flops"] is not None]
    flops = sum(r["flops"] for r in known)
    evaluation = _eval_flops(study, rows)
    total = flops + evaluation
    models = sum(r["parameters"] for r in rows) * BYTES_PER_PARAM_MODEL
    checkpoint = max((r["parameters"] for r in rows), default=0) * BYTES_PER_PARAM_CHECKPOINT
    result: dict[str, Any] = {
        "study": study.name,
        "cells": len(rows),
        "cells_unknown_tokens": len(rows) - len(known),
        "tokens": sum(r["tokens"] for r in known),
        "training_flops": flops,
        "evaluation_flops": evaluation,
        "disk_bytes": {"models": models, "checkpoint_per_running_cell": checkpoint},
        "mfu": mfu,
        "gpu_hours": {gpu: total / (PEAK_BF16[gpu] * mfu) / 3600 for gpu in PLAN_GPUS},
        "cpu_flops": cpu_flops,
        "cpu_hours": None if not cpu_flops else total / cpu_flops / 3600,
        "per_cell": rows,
    }
    return result


def _eval_flops(study: Any, rows: list[dict[str, Any]]) -> float:
    """The learning curve's and the final test's forward passes (the curve's blocks at every
    point, the final test's cap per domain; an unknown cap counts the curve's size)."""
    train = study.train
    curve = (train.eval_points + 2) * train.eval_blocks
    final = train.final_eval_blocks or train.eval_blocks
    blocks = (curve + final) * len(study.domains)
    return sum(r["flops_per_token"] * EVAL_FORWARD_SHARE * blocks * study.seq_len for r in rows)


def spent(metrics: list[dict[str, Any]]) -> dict[str, float]:
    """What finished cells recorded: tokens and training FLOPs (flops_per_token x tokens)."""
    return {
        "cells": len(metrics),
        "tokens": sum(m["tokens_seen"] for m in metrics),
        "training_flops": sum(m["flops_per_token"] * m["tokens_seen"] for m in metrics),
    }


def _si(value: float, giga: str = "G") -> str:
    """3 significant digits with an SI prefix and a space ("25.6 E"); tokens say "B"."""
    units = (("E", 1e18), ("P", 1e15), ("T", 1e12), (giga, 1e9), ("M", 1e6), ("k", 1e3))
    for unit, size in units:
        if abs(value) >= size:
            return f"{value / size:.3g} {unit}"
    return f"{value:.3g}"


def render(result: dict[str, Any]) -> str:
    """The plan as a few lines of text."""
    lines = [
        f"study {result['study']}: {result['cells']} cells, {_si(result['tokens'], 'B')} tokens",
        f"  training {_si(result['training_flops'])}FLOP, evaluation "
        f"{_si(result['evaluation_flops'])}FLOP",
        f"  disk: saved models {_si(result['disk_bytes']['models'])}B, a checkpoint "
        f"{_si(result['disk_bytes']['checkpoint_per_running_cell'])}B per running cell",
    ]
    if result["cells_unknown_tokens"]:
        lines.append(
            f"  {result['cells_unknown_tokens']} cells train one pass over data whose size is "
            "known once the shards exist (run `snakemake shards` first): not counted above"
        )
    gpus = ", ".join(f"{gpu} {hours:.3g} h" for gpu, hours in result["gpu_hours"].items())
    lines.append(f"  GPU-hours at {result['mfu']:.0%} MFU (dense bf16 peak): {gpus}")
    if result["cpu_hours"] is not None:
        lines.append(
            f"  this machine: {result['cpu_hours']:.3g} h at {_si(result['cpu_flops'])}FLOP/s "
            "(measured on its finished cells)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """`curriculab plan [--configfile FILE] [--mfu M] [--json FILE]` in a study's directory."""
    from curriculab.config import load_study, load_yaml
    from curriculab.errors import CurriculabError, one_line
    from curriculab.grid import SHARDS, Grid

    parser = argparse.ArgumentParser(prog="curriculab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("plan", help="what the study will cost, before it runs")
    cmd.add_argument("--configfile", default="config.yaml")
    cmd.add_argument("--schema", default=None, help="default: the workflow's own")
    cmd.add_argument("--mfu", type=float, default=DEFAULT_MFU)
    cmd.add_argument("--json", default=None, help="also write the plan (with every cell) here")
    args = parser.parse_args(argv)
    schema = Path(args.schema or "workflow/schemas/config.schema.yaml")  # a study's checkout
    try:
        # the workflow's directory holds the schema (workflow/schemas/) and shipped files
        study = load_study(load_yaml(args.configfile), schema, schema.resolve().parents[2])
    except CurriculabError as error:
        print(one_line(error), file=sys.stderr)
        return 1
    grid = Grid.of(study)
    cells = [grid.cell_by_id[k] for k in sorted(grid.cell_by_id)]
    manifests = {d: Path(SHARDS.format(domain=d, name="manifest.json")) for d in study.domains}
    metrics = [
        json.loads(p.read_text()) for p in sorted(Path("results/training").glob("**/metrics.json"))
    ]
    done = spent(metrics) if metrics else None
    cpu = None
    if done and done["training_flops"]:
        cpu = done["training_flops"] / sum(m["train_seconds"] for m in metrics)
    result = plan(study, cells, manifests, args.mfu, cpu)
    print(render(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str) + "\n")
    return 0
