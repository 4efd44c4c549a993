# Analysis (docs/stages/analysis.md; curriculab.analysis): the verdict family registered before any
# cell trains, then every cell aggregated into tidy tables with their verdicts (results/analysis/).
from curriculab.analysis.jobs import preregister_job

TABLES = [
    "cells",
    "summary",
    "curves",
    "barcodes",
    "stream_domains",
    "paired",
    "verdicts",
    "references",
    "exposure",
    "lr_profile",
    "utility",
    "trunks",
    "weights",
    "domain_barcodes",
    "domain_verdicts",
    "finetune",
    "audit",
    "comparisons",
]
# With the study key `harness`: every cell's harness scores, and their summary over seeds.
HARNESS_TABLES = ["harness", "harness_summary"] if STUDY.harness else []


# The verdict family, fixed before any cell trains (analysis/registration.py): every training
# job waits for it (ancient: a later change re-registers, and the report says so, but retrains
# nothing).
rule preregister:
    output:
        REGISTRATION,
    log:
        "logs/analysis/preregister.log",
    benchmark:
        "benchmarks/analysis/preregister.tsv"
    resources:
        cpus_per_task=1,
        mem_mb=1000,
        runtime=5,
    params:
        spec=registration_spec(STUDY),
        runs="results/training",  # cells trained before a change of family
    run:
        preregister_job(output, params, log)


rule aggregate:
    input:
        registration=REGISTRATION,
        evaluations=get_cell_runs("eval.json"),
        metrics=get_cell_runs("metrics.json"),
        curves=get_cell_runs("curve.parquet"),
        summaries=[summary for *_, summary in get_stream_summaries()],
        harness=get_cell_runs("harness.json") if STUDY.harness else [],
        trunks=TRUNKS.records(STUDY.ratio_labels, STUDY.seeds),
        manifests=expand("results/shards/{domain}/manifest.json", domain=DOMAINS),
    output:
        **{name: f"results/analysis/{name}.parquet" for name in TABLES + HARNESS_TABLES},
        **{f"{name}_csv": f"results/analysis/{name}.csv" for name in HARNESS_TABLES},
        cells_csv=report(
            "results/analysis/cells.csv",
            caption="../workflow/report/cells.rst",
            category="Tables",
        ),
        summary_csv=report(
            "results/analysis/summary.csv",
            caption="../workflow/report/summary.rst",
            category="Tables",
        ),
        paired_csv=report(
            "results/analysis/paired.csv",
            caption="../workflow/report/paired.rst",
            category="Tables",
        ),
        references_csv=report(
            "results/analysis/references.csv",
            caption="../workflow/report/references.rst",
            category="Tables",
        ),
        exposure_csv=report(
            "results/analysis/exposure.csv",
            caption="../workflow/report/exposure.rst",
            category="Tables",
        ),
        verdicts_csv=report(
            "results/analysis/verdicts.csv",
            caption="../workflow/report/verdicts.rst",
            category="Verdicts",
        ),
        utility_csv=report(
            "results/analysis/utility.csv",
            caption="../workflow/report/utility.rst",
            category="Tables",
        ),
        trunks_csv=report(
            "results/analysis/trunks.csv",
            caption="../workflow/report/trunks.rst",
            category="Tables",
        ),
        weights_csv=report(
            "results/analysis/weights.csv",
            caption="../workflow/report/weights.rst",
            category="Tables",
        ),
        domain_verdicts_csv=report(
            "results/analysis/domain_verdicts.csv",
            caption="../workflow/report/domain_verdicts.rst",
            category="Verdicts",
        ),
        finetune_csv=report(
            "results/analysis/finetune.csv",
            caption="../workflow/report/finetune.rst",
            category="Verdicts",
        ),
        comparisons_csv=report(
            "results/analysis/comparisons.csv",
            caption="../workflow/report/comparisons.rst",
            category="Verdicts",
        ),
    log:
        "logs/analysis/aggregate.log",
    benchmark:
        "benchmarks/analysis/aggregate.tsv"
    conda:
        "../envs/curriculab.yaml"
    resources:
        cpus_per_task=1,
        mem_mb=4000,
        runtime=15,
    params:
        runs=get_cell_specs(),
        streams=get_stream_summaries(),
        domains=DOMAINS,
        unigram_margin=STUDY.unigram_margin,
        target=STUDY.target_domain,
        baseline=STUDY.baseline,
        target_d1_loss=STUDY.target_d1_loss,
        verdict_schedules=STUDY.verdict_schedules,
        removals=STUDY.removals,
        utility=STUDY.utility,
        schedules=STUDY.schedules,
        ratios=STUDY.ratio_labels,
        controls={name: asdict(control) for name, control in CONTROLS.items()},
        audit=asdict(STUDY.audit),
    script:
        "../workflow/scripts/aggregate.py"
