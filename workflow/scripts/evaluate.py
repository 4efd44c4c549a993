"""Rule evaluate: final test loss of one cell's saved model on every domain."""

import json
import sys

from curriculab.errors import log_to

log_to(snakemake.log[0])

import torch

from curriculab.evaluate import evaluate_run

torch.set_num_threads(snakemake.threads)
domains = snakemake.params.domains
result = evaluate_run(
    snakemake.input.model,
    dict(zip(domains, snakemake.input.tests, strict=True)),
    dict(zip(domains, snakemake.input.manifests, strict=True)),
    snakemake.params.max_blocks,
    snakemake.output.evaluation,
    device_choice=snakemake.params.device,
)
print(json.dumps(result, indent=2), file=sys.stderr)
