# The design loop (docs/stages/design.md; curriculab.design): round by round, a surrogate of the
# objective fitted to every measured point proposes the next schedules, which train as cells
# like any other (rules/training.smk packs them per round) and feed the round after. The number of
# points per round is fixed, so the whole DAG is known from the start; a round's proposals are
# an ordinary target whose inputs are the cells before it (nothing reruns while they stand).
from curriculab.design.jobs import design_stream_job

# What rules design and design_summary both read: the run files of the cells a round reads
# (get_design_cells), and how to turn them into the objective and the design's box.
DESIGN_RUNS = {
    name: (lambda wc, file=file: cell_files(get_design_cells(wc), file))
    for name, file in (
        ("evaluations", "eval.json"),
        ("metrics", "metrics.json"),
        ("curves", "curve.parquet"),
    )
}
DESIGN_PARAMS = {
    "design": DESIGN.for_rounds().params(),  # fresh seeds are the summary's: no round reruns
    "runs": lambda wc: cell_specs(get_design_cells(wc)),
    "schedules": DESIGN_GRID,
    "domains": DOMAINS,
    "target": STUDY.target_domain,
    "utility": STUDY.utility,
    "budget": config["streams"],
    "seq_len": STUDY.seq_len,
    "ratio": STUDY.ratio_value(DESIGN.ratio),
}


# A design point's stream is a quick job, like rule stream: it runs in Snakemake's process.
localrules:
    design_stream,


# One round's proposals: round 0 is a Sobol design, later rounds come from the surrogate, the
# last is the recommended curriculum (curriculab.design.plan).
rule design:
    input:
        **DESIGN_RUNS,
        manifests=expand("results/shards/{domain}/manifest.json", domain=DOMAINS),
        proposals=lambda wc: [ROUND.format(round=r) for r in range(int(wc.round))],
    output:
        proposals=ROUND,
    log:
        "logs/design/round{round}.log",
    benchmark:
        "benchmarks/design/round{round}.tsv"
    wildcard_constraints:
        round=r"\d+",
    conda:
        "../envs/curriculab.yaml"
    resources:
        cpus_per_task=1,
        mem_mb=4000,
        runtime=15,
    params:
        **DESIGN_PARAMS,
    script:
        "../workflow/scripts/design.py"


# A design point's stream: the same builder as rule stream, the spec from its round's file.
rule design_stream:
    input:
        manifests=expand("results/shards/{domain}/manifest.json", domain=DOMAINS),
        proposals=lambda wc: ROUND.format(round=round_of(wc.schedule)),
    output:
        stream=f"{STREAM}.arrow",
        summary=f"{STREAM}.summary.json",
    log:
        "logs/streams/{ratio}/{schedule}/seed{seed}.log",
    benchmark:
        "benchmarks/streams/{ratio}/{schedule}/seed{seed}.tsv"
    wildcard_constraints:
        schedule="|".join(map(re.escape, DESIGN_SCHEDULES)),
    resources:
        cpus_per_task=1,
        mem_mb=2000,
        runtime=10,
    params:
        domains=DOMAINS,
        target=STUDY.target_domain,
        ratio=lambda wc: STUDY.ratio_value(wc.ratio),
        budget=config["streams"],
        seq_len=STUDY.seq_len,
    run:
        design_stream_job(input, output, params, wildcards, log)


# The loop's result for the report: every measured point with its prediction, the surface
# fitted to all of them, and the recommended curriculum, predicted and measured on the design's
# seeds and on fresh seeds (with the baseline's cells on both).
rule design_summary:
    input:
        **DESIGN_RUNS,
        manifests=expand("results/shards/{domain}/manifest.json", domain=DOMAINS),
        proposals=[ROUND.format(round=r) for r in range(DESIGN.final_round + 1)],
    output:
        points="results/design/points.parquet",
        points_csv=report(
            "results/design/points.csv",
            caption="../workflow/report/design.rst",
            category="Design",
        ),
        surface="results/design/surface.parquet",
        summary="results/design/summary.json",
    log:
        "logs/design/summary.log",
    benchmark:
        "benchmarks/design/summary.tsv"
    conda:
        "../envs/curriculab.yaml"
    resources:
        cpus_per_task=1,
        mem_mb=4000,
        runtime=15,
    params:
        **(DESIGN_PARAMS | {"design": DESIGN.params()}),
        baseline=STUDY.baseline,
    script:
        "../workflow/scripts/design.py"
