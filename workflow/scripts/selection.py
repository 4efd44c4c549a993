"""Rules selection_embed, select and selection_summary: embed the pool and the target, choose one
selection (a derived domain), or compare selections and placements by seed for the report."""

import sys

from curriculab.errors import log_to

log_to(snakemake.log[0])

from curriculab.selection.embed import EmbeddingSpec
from curriculab.selection.methods import OTSpec
from curriculab.selection.plan import SelectSet

params, rule = snakemake.params, snakemake.rule
if rule == "selection_embed":
    from curriculab.selection.stage import write_embeddings

    write_embeddings(
        snakemake.input.pool,
        snakemake.input.target,
        EmbeddingSpec.of(params.embedding),
        params.seed,
        snakemake.output.embeddings,
    )
elif rule == "selection":
    from curriculab.selection.stage import run_selection

    run_selection(
        snakemake.input.docs,
        snakemake.input.embeddings,
        snakemake.input.tokenizer,
        SelectSet(**params.chosen),
        OTSpec.of(params.ot),
        params.seed,
        dict(snakemake.output),
        params.draw,
    )
else:
    from curriculab.selection.summary import write_summary

    tests = write_summary(params, snakemake.input, dict(snakemake.output))
    print(tests, file=sys.stderr)
