"""Rule report: render reports/report.html from the aggregated tables."""

import sys
from pathlib import Path

from curriculab.errors import log_to

log_to(snakemake.log[0])

import polars as pl

from curriculab.config import load_study
from curriculab.cost import plan
from curriculab.grid import Grid
from curriculab.io import read_json
from curriculab.provenance import provenance
from curriculab.report.data import data_table, prepare_table
from curriculab.report.html import render_report

DESIGN = "design_summary"  # the design loop's summary (study key `design`)
LADDER = "ladder_summary"  # the scale ladder's summary (study key `ladder`)
SELECT = "selection_summary"  # the selections' summary (study key `selection`)
PANELS = ("panel_summaries", "panel_predictions")  # the run panels (study key `panel`)
JSON_INPUTS = ("manifests", "registration", DESIGN, LADDER, SELECT, *PANELS)
tables = {
    name: pl.read_parquet(path) for name, path in snakemake.input.items() if name not in JSON_INPUTS
}
tables["data"] = data_table(
    snakemake.params.domains, snakemake.input.manifests, tables["stream_domains"]
)
tables["prepare"] = prepare_table(snakemake.params.domains, snakemake.input.manifests)
# The verdict family as registered before training (analysis/registration.py).
registration = read_json(snakemake.input.registration)
info = provenance(snakemake.config, snakemake.params.repo)
info["verdict family sha256"] = registration["sha256"]
# The plan (curriculab.cost), made now from the same config and the written shards, beside
# what the cells recorded in the report's cost section.
study = load_study(
    snakemake.config,
    Path(snakemake.params.repo) / "workflow/schemas/config.schema.yaml",
    snakemake.params.repo,
)
grid = Grid.of(study)
planned = plan(
    study,
    list(grid.cell_by_id.values()),
    dict(zip(snakemake.params.domains, map(Path, snakemake.input.manifests), strict=True)),
)
render_report(
    tables,
    {**snakemake.params.study, "planned": {k: v for k, v in planned.items() if k != "per_cell"}},
    Path(snakemake.output.report),
    info,
    *(
        read_json(snakemake.input[key]) if key in snakemake.input.keys() else None  # noqa: SIM118
        for key in (DESIGN, LADDER, SELECT)
    ),
    registration=registration,
    panels={
        "panels": [
            (read_json(summary), pl.read_parquet(predictions))
            for summary, predictions in zip(*(snakemake.input[k] for k in PANELS), strict=True)
        ]
    }
    if PANELS[0] in snakemake.input.keys()  # noqa: SIM118
    else None,
)
print(f"wrote {snakemake.output.report}", file=sys.stderr)
