"""Rule panel: one run panel's choice of regressor, predictions and proposal."""

import json
import sys
from pathlib import Path

from curriculab.errors import log_to

log_to(snakemake.log[0])

from curriculab.config import load_study
from curriculab.panel.stage import run_panel

study = load_study(
    snakemake.config, Path(snakemake.scriptdir).parent / "schemas/config.schema.yaml"
)
table = study.panel.tables[snakemake.wildcards.name]
manifests = snakemake.input.get("manifests")
summary = run_panel(
    table,
    study.panel,
    Path.cwd(),
    Path(snakemake.output.summary).parent,
    tuple(snakemake.params.domains),
    dict(zip(snakemake.params.domains, manifests, strict=True)) if manifests else None,
)
print(json.dumps({k: summary[k] for k in ("runs", "best", "scores")}, indent=2), file=sys.stderr)
