"""Rule shards: tokenize one domain and pack it into fixed-length train and test blocks."""

import json
import os
import sys
from pathlib import Path

from curriculab.errors import log_to

log_to(snakemake.log[0])
# The tokenizers batch encoder's threads: the job's cores (set before its thread pool starts).
os.environ["RAYON_NUM_THREADS"] = str(snakemake.threads)

from curriculab.data.shards import build_shards

manifest = build_shards(
    snakemake.input.docs,
    snakemake.input.tokenizer,
    snakemake.params.seq_len,
    Path(snakemake.output.manifest).parent,
    progress=sys.stderr,
    file_mb=snakemake.params.file_mb,
)
print(json.dumps(manifest["splits"], indent=2), file=sys.stderr)
