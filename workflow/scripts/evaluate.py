"""Rule evaluate: one cell's final test losses beside its unigram reference (eval.json)."""

import json
import sys

from curriculab.errors import log_to

log_to(snakemake.log[0])

from curriculab.evaluate import evaluate_cell

domains = snakemake.params.domains
result = evaluate_cell(
    snakemake.input.metrics,
    snakemake.input.stream,
    dict(zip(domains, snakemake.input.train_shards, strict=True)),
    dict(zip(domains, snakemake.input.tests, strict=True)),
    dict(zip(domains, snakemake.input.manifests, strict=True)),
    snakemake.params.eval_blocks,
    snakemake.params.final_eval_blocks,
    snakemake.output.evaluation,
)
print(json.dumps(result, indent=2), file=sys.stderr)
