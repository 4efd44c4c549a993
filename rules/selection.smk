# Target-aware selection (docs/stages/selection.md; curriculab.selection): the pool's and the target's
# train documents embedded once, then each selection chosen from the pool and written as a
# derived domain (`<pool>_<set>`; a random set once per training seed, `<pool>_<set>_seed<s>`),
# which rule shards builds like any other domain. A schedule with `select: <set>` trains on it
# (a cell of seed s on draw s); rule selection_summary compares selections and placements.

from curriculab.selection.compare import placements
from curriculab.selection.plan import embedding_params

SELECTION_EMBEDDINGS = "results/selection/embeddings.arrow"
# Every cell of a schedule with `select` and its whole-pool partners, as (selection, placement)
# pairs, and the placement every other one is compared with (the baseline's).
SELECTION_LAYOUT = placements(STUDY.schedules, SELECTION)
SELECTION_CELLS = [c for c in CELLS if c["schedule"] in SELECTION_LAYOUT]
SELECTION_REFERENCE = SELECTION_LAYOUT.get(STUDY.baseline, {}).get("placement") or next(
    (v["placement"] for v in SELECTION_LAYOUT.values()), None
)


rule selection_embed:
    input:
        pool=f"results/data/{SELECTION.pool}/docs.parquet",
        target=f"results/data/{SELECTION.target}/docs.parquet",
    output:
        embeddings=SELECTION_EMBEDDINGS,
    log:
        "logs/selection/embed.log",
    benchmark:
        "benchmarks/selection/embed.tsv"
    conda:
        "../envs/curriculab.yaml"
    resources:
        cpus_per_task=1,
        mem_mb=4000,
        runtime=30,
    params:
        **embedding_params(SELECTION),
    script:
        "../workflow/scripts/selection.py"


rule selection:
    input:
        docs=f"results/data/{SELECTION.pool}/docs.parquet",
        embeddings=SELECTION_EMBEDDINGS,
        tokenizer="results/tokenizer/tokenizer.json",
        tokenizer_info="results/tokenizer/tokenizer_info.json",
    output:
        docs="results/selection/{selected}/docs.parquet",
        scores="results/selection/{selected}/scores.parquet",
        record="results/selection/{selected}/selection.json",
    log:
        "logs/selection/{selected}.log",
    benchmark:
        "benchmarks/selection/{selected}.tsv"
    wildcard_constraints:
        selected="|".join(map(re.escape, SELECTED)),
    conda:
        "../envs/curriculab.yaml"
    resources:
        cpus_per_task=1,
        mem_mb=4000,
        runtime=30,
    params:
        ot=vars(SELECTION.ot),
        seed=SELECTION.seed,
        chosen=lambda wc: vars(SELECTION.domains[wc.selected]),
        draw=lambda wc: SELECTION.draws[wc.selected],  # a random set's training seed, else None
    script:
        "../workflow/scripts/selection.py"


# Selection x placement, paired by seed (curriculab.selection.compare), for the report.
rule selection_summary:
    input:
        records=expand(
            "results/selection/{selected}/selection.json", selected=SELECTION.domains
        ),
        scores=expand(
            "results/selection/{selected}/scores.parquet", selected=SELECTION.domains
        ),
        embeddings=SELECTION_EMBEDDINGS,
        evaluations=cell_files(SELECTION_CELLS, "eval.json"),
        metrics=cell_files(SELECTION_CELLS, "metrics.json"),
        curves=cell_files(SELECTION_CELLS, "curve.parquet"),
        manifests=expand("results/shards/{domain}/manifest.json", domain=DOMAINS),
    output:
        summary="results/selection/summary.json",
        tests=report(
            "results/selection/summary.csv",
            caption="../workflow/report/selection.rst",
            category="Selection",
        ),
    log:
        "logs/selection/summary.log",
    benchmark:
        "benchmarks/selection/summary.tsv"
    conda:
        "../envs/curriculab.yaml"
    resources:
        cpus_per_task=1,
        mem_mb=4000,
        runtime=15,
    params:
        selection=config["selection"],
        domains=DOMAINS,
        target_domain=STUDY.target_domain,
        utility=STUDY.utility,
        ratios=list(STUDY.ratio_labels),
        layout=SELECTION_LAYOUT,
        reference=SELECTION_REFERENCE,
        runs=cell_specs(SELECTION_CELLS),
        seeds=list(SELECTION.seeds),  # a random set's draws
    script:
        "../workflow/scripts/selection.py"
