"""Where a finished study's time went, from its Snakemake benchmark files and metrics.json.

The fixed cost of a cell is the wall time of the jobs that made it (its share of training,
evaluation and stream jobs) minus its training steps (`train_seconds` in metrics.json, less
the seconds of a shared prefix it inherited from the cell it branched off). A
stream is shared by the cells of every learning-rate arm, a pack's job by the pack's cells;
the averages below divide each job by the cells it served.

    python bench/fixed_cost.py STUDY_DIR [--out bench/results/fixed_cost.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path


def job_seconds(benchmarks: Path) -> dict[str, list[float]]:
    """Wall seconds (the `s` column) of every benchmarked job, by the rule's folder."""
    seconds: dict[str, list[float]] = defaultdict(list)
    for path in sorted(benchmarks.rglob("*.tsv")):
        parts = path.relative_to(benchmarks).parts
        rule = parts[0].removesuffix(".tsv")
        if rule == "training" and parts[1] == "trunks":  # a trunk's segments: not a cell's job
            rule = "trunks"
        elif rule == "analysis":  # preregister, aggregate
            rule = parts[1].removesuffix(".tsv")
        seconds[rule].append(float(path.read_text().splitlines()[1].split("\t")[0]))
    return seconds


def breakdown(study: Path) -> dict[str, float]:
    """Seconds by stage over the whole study, and per cell."""
    metrics = [
        json.loads(p.read_text()) for p in sorted(study.glob("results/training/**/metrics.json"))
    ]
    jobs = job_seconds(study / "benchmarks")
    cells = len(metrics)
    # a cell branched off another inherits the shared prefix's seconds (curriculab.training.branch)
    inherited = sum(m.get("branched_from", {}).get("train_seconds", 0.0) for m in metrics)
    steps = sum(m["train_seconds"] for m in metrics) - inherited
    per_cell_jobs = sum(sum(jobs.get(rule, [])) for rule in ("training", "evaluate", "streams"))
    inside = sum(m["wall_seconds"] - m["train_seconds"] for m in metrics) + inherited
    return {
        "cells": cells,
        "train_jobs": len(jobs.get("training", [])),
        "train_job_seconds": sum(jobs.get("training", [])),
        "training_steps_seconds": steps,
        "cells_branched": sum("branched_from" in m for m in metrics),
        "shared_prefix_seconds_saved": inherited,
        "train_loop_not_steps_seconds": inside,
        "train_jobs_outside_loop_seconds": sum(jobs.get("training", [])) - steps - inside,
        "evaluate_job_seconds": sum(jobs.get("evaluate", [])),
        "stream_job_seconds": sum(jobs.get("streams", [])),
        "data_job_seconds": sum(
            sum(v) for k, v in jobs.items() if k in ("download", "prepare", "tokenizer", "shards")
        ),
        "report_job_seconds": sum(sum(v) for k, v in jobs.items() if k in ("aggregate", "report")),
        "fixed_cost_per_cell_seconds": (per_cell_jobs - steps) / max(cells, 1),
        "trained_tokens_per_second_per_job": sum(
            m["tokens_seen"] - m.get("branched_from", {}).get("step", 0) * m["batch_tokens"]
            for m in metrics
        )
        / max(steps, 1e-9),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = {"study": str(args.study), "command": " ".join([sys.executable, *sys.argv])}
    result.update(breakdown(args.study))
    for key, value in result.items():
        print(f"{key:36} {value:,.1f}" if isinstance(value, float) else f"{key:36} {value}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
