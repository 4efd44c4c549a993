"""Rule train_<pack>: train the cells of one pack, each on its own stream, in one process."""

import tempfile
from pathlib import Path

from curriculab.errors import log_to

log_to(snakemake.log.job)

from curriculab.config import train_config
from curriculab.io import read_json
from curriculab.training.distributed import launch
from curriculab.training.inputs import CellInputs
from curriculab.training.loop import train_pack
from curriculab.training.run import CellJob

# Shard files by folder (results/shards/<folder>/): a domain's, or a selection's in its pool's
# place for the cells that name one (their "shards": domain -> folder).
files = {
    key: {Path(path).parent.name: Path(path) for path in snakemake.input[key]}
    for key in ("train_shards", "test_shards", "manifests")
}
own = {domain: domain for domain in snakemake.params.domains}


def cell_inputs(cell, stream):
    folders = cell.get("shards", own)
    shards = {key: {d: by[f] for d, f in folders.items()} for key, by in files.items()}
    return CellInputs(stream=Path(stream), tokenizer=Path(snakemake.input.tokenizer), **shards)


cells = snakemake.params.cells
settings = {arm: train_config(raw) for arm, raw in snakemake.params.train.items()}
jobs = [
    CellJob(
        cell=f"ratio={c['ratio']} schedule={c['schedule']} arm={c['arm']} seed={c['seed']}",
        inputs=cell_inputs(c, stream),
        cfg=settings[c["arm"]],
        seed=int(c["seed"]),
        out_dir=Path(metrics).parent,
        log=Path(log),
        window_start=read_json(summary)["window_start"],
        trunk=Path(c["trunk"]) if c.get("trunk") else None,
    )
    for c, stream, summary, metrics, log in zip(
        cells,
        snakemake.input.streams,
        snakemake.input.summaries,
        snakemake.output.metrics,
        snakemake.log.cells,
        strict=True,
    )
]
payload = {
    "jobs": jobs,
    "preset": snakemake.params.preset,
    "pack": {"name": snakemake.params.pack, "cells": [c["id"] for c in cells]},
    "packing": snakemake.resources.packing,
    "threads": snakemake.threads,
}
processes = int(getattr(snakemake.resources, "processes", 1))
if processes > 1:  # each cell data parallel on that many ranks (training/distributed.py)
    scratch = Path(tempfile.mkdtemp(prefix=".ranks-", dir=Path(snakemake.log.job).parent))
    launch(payload, processes, scratch)
    scratch.rmdir()
else:
    train_pack(**payload)
