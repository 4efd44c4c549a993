"""Rule aggregate: cells with learning metrics, references, exposure, paired comparisons,
verdicts, domain utility by removal and trunk segments."""

import sys
from pathlib import Path

from curriculab.errors import log_to

log_to(snakemake.log[0])

from curriculab.analysis.aggregate import collect_cells, collect_streams, summarise, write_tables
from curriculab.analysis.references import reference_table
from curriculab.analysis.statistics import analyse
from curriculab.analysis.trunks import collect_trunks
from curriculab.analysis.utility import utility_table

params = snakemake.params
runs = [(r, s, arm, int(seed), Path(d)) for r, s, arm, seed, d in params.runs]
collected = collect_cells(runs, params.target)
streams = [(r, s, int(seed), Path(p)) for r, s, seed, p in params.streams]
barcodes, stream_domains = collect_streams(streams)
analysed = analyse(
    collected["cells"],
    collected["curves"],
    barcodes,
    params.baseline,
    params.target_d1_loss,
    params.verdict_schedules,
)
tables = {
    **collected,
    **analysed,
    "summary": summarise(analysed["cells"]),
    "references": reference_table(analysed["cells"], params.domains, params.unigram_margin),
    "barcodes": barcodes,
    "stream_domains": stream_domains,
    "utility": utility_table(analysed["cells"], params.removals, params.domains, params.target),
    "trunks": collect_trunks(snakemake.input.trunks),  # empty (with its columns): no trunks
}
if snakemake.input.harness:  # study key `harness`: lm-evaluation-harness scores
    from curriculab.analysis.harness import collect_harness, harness_summary

    tables["harness"] = collect_harness(runs)
    tables["harness_summary"] = harness_summary(tables["harness"], params.baseline)
for path in write_tables(tables, Path(snakemake.output.cells).parent):
    print(f"wrote {path}", file=sys.stderr)
