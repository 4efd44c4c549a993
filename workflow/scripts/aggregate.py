"""Rule aggregate: cells, a summary over seeds, learning curves and what each stream did."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from curriculab.analysis.aggregate import collect_cells, collect_streams, summarise, write_tables

runs = [(r, s, int(seed), Path(d)) for r, s, seed, d in snakemake.params.runs]
cells, curves = collect_cells(runs, snakemake.params.target)
summaries = [
    (r, s, seed, Path(p))
    for (r, s, seed, _), p in zip(runs, snakemake.input.summaries, strict=True)
]
barcodes, stream_domains = collect_streams(summaries)
tables = {
    "cells": cells,
    "summary": summarise(cells),
    "curves": curves,
    "barcodes": barcodes,
    "stream_domains": stream_domains,
}
for path in write_tables(tables, Path(snakemake.output.cells).parent):
    print(f"wrote {path}", file=sys.stderr)
