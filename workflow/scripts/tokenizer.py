"""Rule tokenizer: train the byte-level BPE shared by every domain, or write the existing one
the study names (tokenizer.pretrained), with tokenizer_info.json beside it."""

import sys

from curriculab.errors import log_to

log_to(snakemake.log[0])

from curriculab.data.pretrained import write_pretrained
from curriculab.data.tokenizer import run_tokenizer

params = snakemake.params
if params.pretrained is None:
    size = run_tokenizer(snakemake.input.docs, params.vocab_size, snakemake.output.tokenizer)
    print(f"trained a byte-level BPE with {size} tokens", file=sys.stderr)
else:
    info = write_pretrained(params.pretrained, params.end_of_document, snakemake.output.tokenizer)
    print(
        f"{params.pretrained}: {info['vocab_size']} tokens, end of document "
        f"{info['end_of_document']!r} (id {info['end_of_document_id']})",
        file=sys.stderr,
    )
