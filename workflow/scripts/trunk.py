"""Rule trunk: train one segment of a trunk, from its previous checkpoint to a branch point."""

from pathlib import Path

from curriculab.errors import log_to

log_to(snakemake.log[0])

from curriculab.config import train_config
from curriculab.io import write_json
from curriculab.training.inputs import CellInputs
from curriculab.training.trunk import train_trunk

wc, params, domains = snakemake.wildcards, snakemake.params, snakemake.params.domains
inputs = CellInputs(
    stream=Path(snakemake.input.stream),
    train_shards=dict(zip(domains, map(Path, snakemake.input.train_shards), strict=True)),
    test_shards=dict(zip(domains, map(Path, snakemake.input.test_shards), strict=True)),
    manifests=dict(zip(domains, map(Path, snakemake.input.manifests), strict=True)),
    tokenizer=Path(snakemake.input.tokenizer),
)
label = f"trunk {wc.trunk} ratio={wc.ratio} arm={wc.arm} seed={wc.seed}"
parent = Path(snakemake.input.parent[0]) if snakemake.input.parent else None
cost = train_trunk(
    inputs, params.preset, train_config(params.train), int(wc.seed), label, parent,
    int(wc.step), Path(snakemake.output.checkpoint), snakemake.threads,
)  # fmt: skip
identity = {"ratio": wc.ratio, "ratio_value": params.ratio_value, "trunk": wc.trunk}
write_json(snakemake.output.record, {**identity, "arm": wc.arm, "seed": int(wc.seed), **cost})
