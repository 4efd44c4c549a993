"""Rule panel: one run panel's choice of regressor, predictions and proposal."""

import json
import sys
from pathlib import Path

from curriculab.errors import log_to

log_to(snakemake.log[0])

from curriculab.panel.plan import check_panel
from curriculab.panel.stage import run_panel

# The `panel` key, validated with the rest of the config when Snakemake built the DAG; its
# tables found in the working directory or the workflow's (files that ship with it).
spec = check_panel(snakemake.config["panel"], ".", snakemake.params.workflow_dir)
manifests = snakemake.input.get("manifests")
summary = run_panel(
    spec.tables[snakemake.wildcards.name],
    spec,
    Path.cwd(),
    Path(snakemake.output.summary).parent,
    tuple(snakemake.params.domains),
    dict(zip(snakemake.params.domains, manifests, strict=True)) if manifests else None,
)
print(json.dumps({k: summary[k] for k in ("runs", "best", "scores")}, indent=2), file=sys.stderr)
