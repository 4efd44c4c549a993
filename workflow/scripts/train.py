"""Rule train_<pack>: train the cells of one pack, each on its own stream, in one process."""

from pathlib import Path

from curriculab.errors import log_to

log_to(snakemake.log.job)

from curriculab.config import train_config
from curriculab.io import read_json
from curriculab.packed import CellJob, train_pack
from curriculab.train import CellInputs

domains = snakemake.params.domains
shared = {
    "train_shards": dict(zip(domains, map(Path, snakemake.input.train_shards), strict=True)),
    "test_shards": dict(zip(domains, map(Path, snakemake.input.test_shards), strict=True)),
    "manifests": dict(zip(domains, map(Path, snakemake.input.manifests), strict=True)),
    "tokenizer": Path(snakemake.input.tokenizer),
}
cells = snakemake.params.cells
settings = {arm: train_config(raw) for arm, raw in snakemake.params.train.items()}
jobs = [
    CellJob(
        cell=f"ratio={c['ratio']} schedule={c['schedule']} arm={c['arm']} seed={c['seed']}",
        inputs=CellInputs(stream=Path(stream), **shared),
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
train_pack(
    jobs,
    snakemake.params.preset,
    pack={"name": snakemake.params.pack, "cells": [c["id"] for c in cells]},
    packing=snakemake.resources.packing,
    threads=snakemake.threads,
)
