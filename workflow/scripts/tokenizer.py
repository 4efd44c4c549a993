"""Rule tokenizer: train the byte-level BPE shared by every domain."""

import sys

from curriculab.errors import log_to

log_to(snakemake.log[0])

from curriculab.data.tokenizer import run_tokenizer

size = run_tokenizer(snakemake.input.docs, snakemake.params.vocab_size, snakemake.output.tokenizer)
print(f"trained a byte-level BPE with {size} tokens", file=sys.stderr)
