"""Rule report: render reports/report.html from the aggregated tables."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w", buffering=1)

import polars as pl

from curriculab.report.html import render_report

render_report(
    pl.read_parquet(snakemake.input.cells),
    pl.read_parquet(snakemake.input.summary),
    pl.read_parquet(snakemake.input.curves),
    pl.read_parquet(snakemake.input.barcodes),
    snakemake.params.study,
    Path(snakemake.output.report),
)
print(f"wrote {snakemake.output.report}", file=sys.stderr)
