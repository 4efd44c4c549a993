# The self-contained HTML report (docs/stages/analysis.md; curriculab.report) of the
# analysis tables and each optional stage's summary.


rule report:
    input:
        **{name: f"results/analysis/{name}.parquet" for name in TABLES + HARNESS_TABLES},
        # With the study key `design`: the design loop's points, surface and recommendation.
        **(
            {
                "design_points": "results/design/points.parquet",
                "design_surface": "results/design/surface.parquet",
                "design_summary": "results/design/summary.json",
            }
            if DESIGN
            else {}
        ),
        # With the study key `ladder`: every scale's fits, the predictions and the check.
        **({"ladder_summary": "results/ladder/summary.json"} if LADDER else {}),
        # With the study key `selection`: the selections and their comparisons.
        **({"selection_summary": "results/selection/summary.json"} if SELECTION else {}),
        # With the study key `panel`: every panel's choice, predictions and proposal.
        **(
            {
                "panel_summaries": expand(
                    "results/panel/{name}/summary.json", name=PANEL.tables
                ),
                "panel_predictions": expand(
                    "results/panel/{name}/predictions.parquet", name=PANEL.tables
                ),
            }
            if PANEL
            else {}
        ),
        manifests=expand("results/shards/{domain}/manifest.json", domain=DOMAINS),
        registration=REGISTRATION,
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
