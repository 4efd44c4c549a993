"""Rule aggregate: cells with learning metrics and the objective, references, exposure, the
comparability audit, paired comparisons, verdicts (H1/H2 and per domain), fine-tuning calls,
domain utility by removal and trunk segments."""

import sys
from pathlib import Path

from curriculab.errors import log_to

log_to(snakemake.log[0])

from curriculab.analysis.aggregate import collect_cells, collect_streams, summarise, write_tables
from curriculab.analysis.audit import annotate, audit, comparison_list, with_estimates
from curriculab.analysis.controls import AuditSpec, MatchedControl
from curriculab.analysis.domains import (
    analyse_objective,
    collect_domain_barcodes,
    train_blocks,
    weights_table,
)
from curriculab.analysis.references import reference_table
from curriculab.analysis.trunk_segments import collect_trunks
from curriculab.analysis.utility import utility_table

params = snakemake.params
runs = [(r, s, arm, int(seed), Path(d)) for r, s, arm, seed, d in params.runs]
collected = collect_cells(runs, params.target)
facts = collected.pop("facts")
streams = [(r, s, int(seed), Path(p)) for r, s, seed, p in params.streams]
barcodes, stream_domains = collect_streams(streams)
domain_barcodes = collect_domain_barcodes(streams)  # empty for summaries without share_by_bin
blocks = train_blocks(params.domains, snakemake.input.manifests)
weights = weights_table(params.utility, params.domains, params.target, params.ratios, blocks)
# What every comparison differs in (analysis/audit.py): only order alone earns a verdict.
controls = {
    n: MatchedControl(**{**c, "arms": tuple(c["arms"])}) for n, c in params.controls.items()
}
listed = comparison_list(collected["cells"], params.baseline, controls)
audited, comparisons = audit(
    facts, stream_domains, collected["exposure"], listed, AuditSpec(**params.audit)
)
study = dict(params.items())
analysed = analyse_objective(collected, barcodes, domain_barcodes, weights, study, comparisons)
for name in ("verdicts", "domain_verdicts", "finetune"):
    analysed[name] = annotate(analysed[name], comparisons)
tables = {
    **collected,
    **analysed,  # cells, paired, verdicts, domain_verdicts, finetune
    "summary": summarise(analysed["cells"]),
    "references": reference_table(analysed["cells"], params.domains, params.unigram_margin),
    "barcodes": barcodes,
    "stream_domains": stream_domains,
    "domain_barcodes": domain_barcodes,
    "weights": weights,
    "utility": utility_table(
        analysed["cells"], params.removals, params.domains, params.target, params.utility
    ),
    "trunks": collect_trunks(snakemake.input.trunks),  # empty (with its columns): no trunks
    "audit": audited,
    "comparisons": with_estimates(comparisons, analysed["cells"], params.baseline),
}
if snakemake.input.harness:  # study key `harness`: lm-evaluation-harness scores
    from curriculab.harness.tables import collect_harness, harness_summary

    tables["harness"] = collect_harness(runs)
    tables["harness_summary"] = harness_summary(tables["harness"], params.baseline)
for path in write_tables(tables, Path(snakemake.output.cells).parent):
    print(f"wrote {path}", file=sys.stderr)
