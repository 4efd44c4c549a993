"""Rule download: read one domain's source and store its raw documents."""

import sys

from curriculab.errors import log_to

log_to(snakemake.log[0])

from curriculab.data.sources import read_source, write_raw

documents = read_source(snakemake.params.source, snakemake.params.max_docs)
write_raw(documents, snakemake.params.source, snakemake.output.raw)
print(f"domain {snakemake.wildcards.domain}: {len(documents)} raw documents", file=sys.stderr)
