"""Rule download: read one domain's source, cap it, and store its raw documents."""

import sys

from curriculab.errors import log_to

log_to(snakemake.log[0])

from curriculab.data.sources import read_capped, write_raw

params = snakemake.params
capped = read_capped(params.source, params.max_docs, params.sample)
write_raw(capped, params.source, snakemake.output.raw)
print(f"domain {snakemake.wildcards.domain}: {capped.info()}", file=sys.stderr)
