"""Rule report: render reports/report.html from the aggregated tables."""

import sys
from pathlib import Path

from curriculab.errors import log_to

log_to(snakemake.log[0])

import polars as pl

from curriculab.provenance import provenance
from curriculab.report.data import data_table
from curriculab.report.html import render_report

tables = {
    name: pl.read_parquet(path) for name, path in snakemake.input.items() if name != "manifests"
}
tables["data"] = data_table(
    snakemake.params.domains, snakemake.input.manifests, tables["stream_domains"]
)
render_report(
    tables,
    snakemake.params.study,
    Path(snakemake.output.report),
    provenance(snakemake.config, snakemake.params.repo),
)
print(f"wrote {snakemake.output.report}", file=sys.stderr)
