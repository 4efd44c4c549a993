"""Rule aggregate: cells with learning metrics, summaries, paired comparisons and verdicts."""

import sys
from pathlib import Path

from curriculab.errors import log_to

log_to(snakemake.log[0])

from curriculab.analysis.aggregate import collect_cells, collect_streams, summarise, write_tables
from curriculab.analysis.statistics import analyse

params = snakemake.params
runs = [(r, s, int(seed), Path(d)) for r, s, seed, d in params.runs]
cells, curves = collect_cells(runs, params.target)
summaries = [
    (r, s, seed, Path(p))
    for (r, s, seed, _), p in zip(runs, snakemake.input.summaries, strict=True)
]
barcodes, stream_domains = collect_streams(summaries)
analysed = analyse(cells, curves, barcodes, params.baseline, params.target_d1_loss)
tables = {
    **analysed,
    "summary": summarise(analysed["cells"]),
    "curves": curves,
    "barcodes": barcodes,
    "stream_domains": stream_domains,
}
for path in write_tables(tables, Path(snakemake.output.cells).parent):
    print(f"wrote {path}", file=sys.stderr)
