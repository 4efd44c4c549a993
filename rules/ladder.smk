# Scale ladders (docs/stages/ladder.md; curriculab.ladder): at every scale, the mixture runs and
# the ordering runs train as cells like any other (rules/training.smk packs them per scale); rule
# ladder fits every scale and predicts the target scale; the check's cells train there with the
# predicted mixtures and the alternatives, and rule ladder_summary compares them by seed.

from curriculab.ladder.jobs import ladder_stream_job
from curriculab.ladder.plan import TARGET

LADDER_FITS = "results/ladder/fits.json"


LADDER_SCALES = [scale.name for scale in LADDER.scales]
LADDER_PARAMS = {
    "ladder": LADDER.params(),
    "domains": DOMAINS,
    "target": STUDY.target_domain,
    "utility": STUDY.utility,
    "ratio": STUDY.ratio_value(LADDER.ratio),
}


localrules:
    ladder_stream,


# A ladder cell's stream: the same builder as rule stream, a spec and budget of its own.
rule ladder_stream:
    input:
        manifests=expand("results/shards/{domain}/manifest.json", domain=DOMAINS),
        fits=lambda wc: (
            [LADDER_FITS] if wc.schedule.startswith(f"ladder_{TARGET}_") else []
        ),
    output:
        stream=f"{STREAM}.arrow",
        summary=f"{STREAM}.summary.json",
    log:
        "logs/streams/{ratio}/{schedule}/seed{seed}.log",
    benchmark:
        "benchmarks/streams/{ratio}/{schedule}/seed{seed}.tsv"
    wildcard_constraints:
        schedule="|".join(map(re.escape, LADDER_SCHEDULES)),
    resources:
        cpus_per_task=1,
        mem_mb=2000,
        runtime=10,
    params:
        domains=DOMAINS,
        target=STUDY.target_domain,
        ratio=lambda wc: STUDY.ratio_value(wc.ratio),
        ladder=LADDER.params(),
        seq_len=STUDY.seq_len,
    run:
        ladder_stream_job(input, output, params, wildcards, log)


# Every scale's mixture optimum and best end window, their predictions at the target, and every
# ladder cell's epochs of every domain (ladder.max_epochs holds when the streams are built).
rule ladder:
    input:
        **ladder_runs(LADDER_SCALES),
        manifests=expand("results/shards/{domain}/manifest.json", domain=DOMAINS),
    output:
        fits=LADDER_FITS,
        optima="results/ladder/optima.csv",
        predictions="results/ladder/predictions.csv",
        orders="results/ladder/orders.csv",
        epochs="results/ladder/epochs.csv",
    log:
        "logs/ladder/fits.log",
    benchmark:
        "benchmarks/ladder/fits.tsv"
    conda:
        "../envs/curriculab.yaml"
    resources:
        cpus_per_task=1,
        mem_mb=4000,
        runtime=15,
    params:
        **LADDER_PARAMS,
        runs=cell_specs([c for s in LADDER_SCALES for c in LADDER_CELLS[s]]),
    script:
        "../workflow/scripts/ladder.py"


# The check at the target scale: the predicted mixtures against the natural mixture, uniform
# weights and the smallest scale's optimum, paired by seed; with the fits, for the report.
rule ladder_summary:
    input:
        **ladder_runs([TARGET]),
        fits=LADDER_FITS,
        manifests=expand("results/shards/{domain}/manifest.json", domain=DOMAINS),
    output:
        summary="results/ladder/summary.json",
        check=report(
            "results/ladder/check.csv",
            caption="../workflow/report/ladder.rst",
            category="Ladder",
        ),
    log:
        "logs/ladder/summary.log",
    benchmark:
        "benchmarks/ladder/summary.tsv"
    conda:
        "../envs/curriculab.yaml"
    resources:
        cpus_per_task=1,
        mem_mb=4000,
        runtime=15,
    params:
        **LADDER_PARAMS,
        runs=cell_specs(LADDER_CELLS[TARGET]),
    script:
        "../workflow/scripts/ladder.py"
