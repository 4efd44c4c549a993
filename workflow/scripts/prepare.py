"""Rule prepare: clean, deduplicate and split one domain's documents."""

import sys

from curriculab.errors import log_to

log_to(snakemake.log[0])

from curriculab.data.prepare import run_prepare

counts = run_prepare(
    snakemake.input.raw,
    snakemake.output.docs,
    snakemake.wildcards.domain,
    snakemake.params.test_fraction,
    snakemake.params.min_chars,
    snakemake.params.subset,
)
print(f"domain {snakemake.wildcards.domain}: {counts}", file=sys.stderr)
