# Run panels (docs/stages/panel.md; curriculab.panel): the study's own cells and imported run
# tables, each fitted by every regressor, the regressor chosen by out-of-fold rank correlation,
# and the best mixture proposed.


def get_panel_inputs(wildcards):
    """The files a panel reads: the cells table and every stream, or the imported files."""
    if wildcards.name == PANEL_OWN:
        return {
            "cells": "results/analysis/cells.parquet",
            "streams": [STREAM.format(**c) + ".arrow" for c in STREAMS],
            "manifests": expand(
                "results/shards/{domain}/manifest.json", domain=DOMAINS
            ),
        }
    return {"tables": PANEL.tables[wildcards.name].inputs()}


rule panel:
    input:
        unpack(get_panel_inputs),
    output:
        panel="results/panel/{name}/panel.parquet",
        predictions="results/panel/{name}/predictions.parquet",
        summary="results/panel/{name}/summary.json",
    log:
        "logs/panel/{name}.log",
    benchmark:
        "benchmarks/panel/{name}.tsv"
    wildcard_constraints:
        name="|".join(PANEL.tables),
    conda:
        "../envs/curriculab.yaml"
    resources:
        cpus_per_task=1,
        mem_mb=4000,
        runtime=30,
    params:
        domains=DOMAINS,
        workflow_dir=workflow.basedir,
    script:
        "../workflow/scripts/panel.py"
