# Target-aware selection (docs/stages/selection.md; curriculab.selection): the pool's and the target's
# train documents embedded once, then each selection chosen from the pool and written as a
# derived domain (`<pool>_<set>`; a random set once per training seed, `<pool>_<set>_seed<s>`),
# which rule shards builds like any other domain. A schedule with `select: <set>` trains on it
# (a cell of seed s on draw s); rule select_summary compares selections and placements.

from curriculab.selection.compare import placements
from curriculab.selection.plan import embedding_params

SELECT_EMBEDDINGS = "results/select/embeddings.arrow"
# Every cell of a schedule with `select` and its whole-pool partners, as (selection, placement)
# pairs, and the placement every other one is compared with (the baseline's).
SELECT_LAYOUT = placements(STUDY.schedules, SELECT)
SELECT_CELLS = [c for c in CELLS if c["schedule"] in SELECT_LAYOUT]
SELECT_REFERENCE = SELECT_LAYOUT.get(STUDY.baseline, {}).get("placement") or next(
    (v["placement"] for v in SELECT_LAYOUT.values()), None
)


rule select_embed:
    input:
        pool=f"results/data/{SELECT.pool}/docs.parquet",
        target=f"results/data/{SELECT.target}/docs.parquet",
    output:
        embeddings=SELECT_EMBEDDINGS,
    log:
        "logs/select/embed.log",
    benchmark:
        "benchmarks/select/embed.tsv"
    conda:
        "../envs/curriculab.yaml"
    resources:
        cpus_per_task=1,
        mem_mb=4000,
        runtime=30,
    params:
        **embedding_params(SELECT),
    script:
        "../workflow/scripts/select.py"


rule select:
    input:
        docs=f"results/data/{SELECT.pool}/docs.parquet",
        embeddings=SELECT_EMBEDDINGS,
        tokenizer="results/tokenizer/tokenizer.json",
    output:
        docs="results/select/{selected}/docs.parquet",
        scores="results/select/{selected}/scores.parquet",
        record="results/select/{selected}/selection.json",
    log:
        "logs/select/{selected}.log",
    benchmark:
        "benchmarks/select/{selected}.tsv"
    wildcard_constraints:
        selected="|".join(map(re.escape, SELECTED)),
    conda:
        "../envs/curriculab.yaml"
    resources:
        cpus_per_task=1,
        mem_mb=4000,
        runtime=30,
    params:
        ot=vars(SELECT.ot),
        seed=SELECT.seed,
        chosen=lambda wc: vars(SELECT.domains[wc.selected]),
        draw=lambda wc: SELECT.draws[wc.selected],  # a random set's training seed, else None
    script:
        "../workflow/scripts/select.py"


# Selection x placement, paired by seed (curriculab.selection.compare), for the report.
rule select_summary:
    input:
        records=expand(
            "results/select/{selected}/selection.json", selected=SELECT.domains
        ),
        scores=expand(
            "results/select/{selected}/scores.parquet", selected=SELECT.domains
        ),
        embeddings=SELECT_EMBEDDINGS,
        evaluations=cell_files(SELECT_CELLS, "eval.json"),
        metrics=cell_files(SELECT_CELLS, "metrics.json"),
        curves=cell_files(SELECT_CELLS, "curve.parquet"),
        manifests=expand("results/shards/{domain}/manifest.json", domain=DOMAINS),
    output:
        summary="results/select/summary.json",
        tests=report(
            "results/tables/select.csv",
            caption="../workflow/report/select.rst",
            category="Selection",
        ),
    log:
        "logs/select/summary.log",
    benchmark:
        "benchmarks/select/summary.tsv"
    conda:
        "../envs/curriculab.yaml"
    resources:
        cpus_per_task=1,
        mem_mb=4000,
        runtime=15,
    params:
        select=config["select"],
        domains=DOMAINS,
        target_domain=STUDY.target_domain,
        utility=STUDY.utility,
        ratios=list(STUDY.ratio_labels),
        layout=SELECT_LAYOUT,
        reference=SELECT_REFERENCE,
        runs=cell_specs(SELECT_CELLS),
        seeds=list(SELECT.seeds),  # a random set's draws
    script:
        "../workflow/scripts/select.py"
