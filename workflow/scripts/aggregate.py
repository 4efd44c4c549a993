"""Rule aggregate: one tidy table of cells, a summary over seeds, and all learning curves."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from curriculab.analysis.aggregate import collect_cells, summarise, write_tables

runs = [(r, s, int(seed), Path(d)) for r, s, seed, d in snakemake.params.runs]
cells, curves = collect_cells(runs, snakemake.params.target)
tables = {"cells": cells, "summary": summarise(cells), "curves": curves}
for path in write_tables(tables, Path(snakemake.output.cells).parent):
    print(f"wrote {path}", file=sys.stderr)
