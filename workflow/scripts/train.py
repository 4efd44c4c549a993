"""Rule train: train one cell's model on its stream."""

from pathlib import Path

from curriculab.errors import log_to

log_to(snakemake.log[0])

from curriculab.config import train_config
from curriculab.io import read_json
from curriculab.train import CellInputs, train_cell

domains = snakemake.params.domains
inputs = CellInputs(
    stream=Path(snakemake.input.stream),
    train_shards=dict(zip(domains, map(Path, snakemake.input.train_shards), strict=True)),
    test_shards=dict(zip(domains, map(Path, snakemake.input.test_shards), strict=True)),
    manifests=dict(zip(domains, map(Path, snakemake.input.manifests), strict=True)),
    tokenizer=Path(snakemake.input.tokenizer),
)
wc = snakemake.wildcards
train_cell(
    inputs,
    snakemake.params.preset,
    train_config(snakemake.params.train),
    int(wc.seed),
    cell=f"ratio={wc.ratio} schedule={wc.schedule} arm={wc.arm} seed={wc.seed}",
    out_dir=Path(snakemake.output.metrics).parent,
    threads=snakemake.threads,
    window_start=read_json(snakemake.input.summary)["window_start"],
)
