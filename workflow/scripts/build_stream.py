"""Rule stream: the training order of one cell (ratio, schedule, seed)."""

import json
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from curriculab.io import read_json
from curriculab.streams.build import write_stream

manifests = {
    name: read_json(path)
    for name, path in zip(snakemake.params.domains, snakemake.input.manifests, strict=True)
}
summary = write_stream(
    manifests,
    snakemake.params.target,
    snakemake.params.ratio,
    snakemake.wildcards.schedule,
    int(snakemake.wildcards.seed),
    snakemake.output.stream,
    snakemake.output.summary,
)
print(json.dumps(summary), file=sys.stderr)
