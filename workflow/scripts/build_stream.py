"""Rule stream: the training order of one cell (ratio, schedule, seed)."""

import json
import sys

from curriculab.errors import log_to

log_to(snakemake.log[0])

from curriculab.config import budget_spec
from curriculab.io import read_json
from curriculab.streams.stream_file import write_stream

manifests = {
    name: read_json(path)
    for name, path in zip(snakemake.params.domains, snakemake.input.manifests, strict=True)
}
summary = write_stream(
    manifests,
    snakemake.params.target,
    snakemake.params.ratio,
    snakemake.wildcards.schedule,
    snakemake.params.spec,
    int(snakemake.wildcards.seed),
    budget_spec(snakemake.params.budget, snakemake.params.seq_len),
    snakemake.output.stream,
    snakemake.output.summary,
)
print(json.dumps(summary), file=sys.stderr)
