"""Rule prepare: clean, deduplicate and split one domain's documents; drop test documents that
nearly repeat a train one."""

import json
import sys

from curriculab.errors import log_to

log_to(snakemake.log[0])

from curriculab.data.prepare import run_prepare

record = run_prepare(
    snakemake.input.raw,
    snakemake.output.docs,
    snakemake.wildcards.domain,
    snakemake.params.test_fraction,
    snakemake.params.min_chars,
    snakemake.params.subset,
    snakemake.params.near_duplicates,
    progress=sys.stderr,
)
print(json.dumps(record, indent=2), file=sys.stderr)
