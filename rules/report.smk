# Aggregate every cell into tidy tables, then render the self-contained HTML report.


rule aggregate:
    input:
        evaluations=get_cell_runs(
            "results/runs/{ratio}/{schedule}/seed{seed}/eval.json"
        ),
        metrics=get_cell_runs("results/runs/{ratio}/{schedule}/seed{seed}/metrics.json"),
        curves=get_cell_runs("results/runs/{ratio}/{schedule}/seed{seed}/curve.parquet"),
        summaries=get_cell_runs(
            "results/streams/{ratio}/{schedule}/seed{seed}.summary.json"
        ),
    output:
        cells="results/tables/cells.parquet",
        summary="results/tables/summary.parquet",
        curves="results/tables/curves.parquet",
        barcodes="results/tables/barcodes.parquet",
        stream_domains="results/tables/stream_domains.parquet",
        paired="results/tables/paired.parquet",
        verdicts="results/tables/verdicts.parquet",
        cells_csv=report(
            "results/tables/cells.csv",
            caption="../workflow/report/cells.rst",
            category="Tables",
        ),
        summary_csv=report(
            "results/tables/summary.csv",
            caption="../workflow/report/summary.rst",
            category="Tables",
        ),
        paired_csv=report(
            "results/tables/paired.csv",
            caption="../workflow/report/paired.rst",
            category="Tables",
        ),
        verdicts_csv=report(
            "results/tables/verdicts.csv",
            caption="../workflow/report/verdicts.rst",
            category="Verdicts",
        ),
    log:
        "logs/aggregate.log",
    benchmark:
        "benchmarks/aggregate.tsv"
    conda:
        "../envs/curriculab.yaml"
    resources:
        cpus_per_task=1,
        mem_mb=4000,
        runtime=15,
    params:
        runs=get_cell_specs(),
        target=STUDY.target_domain,
        baseline=STUDY.baseline,
        target_d1_loss=STUDY.target_d1_loss,
    script:
        "../workflow/scripts/aggregate.py"


rule report:
    input:
        cells="results/tables/cells.parquet",
        summary="results/tables/summary.parquet",
        curves="results/tables/curves.parquet",
        barcodes="results/tables/barcodes.parquet",
        stream_domains="results/tables/stream_domains.parquet",
        paired="results/tables/paired.parquet",
        verdicts="results/tables/verdicts.parquet",
        manifests=expand("results/shards/{domain}/manifest.json", domain=DOMAINS),
    output:
        report=report(
            "reports/report.html",
            caption="../workflow/report/report.rst",
            category="Report",
            labels={"study": STUDY.name},
        ),
    log:
        "logs/report.log",
    benchmark:
        "benchmarks/report.tsv"
    conda:
        "../envs/curriculab.yaml"
    resources:
        cpus_per_task=1,
        mem_mb=4000,
        runtime=15,
    params:
        study=get_study_summary(),
        domains=DOMAINS,
        repo=workflow.basedir,
    script:
        "../workflow/scripts/report.py"
