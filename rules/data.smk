# Data stages: download -> prepare -> tokenizer -> shards. Shards are shared by every cell.


rule download:
    output:
        raw="results/raw/{domain}.parquet",
    log:
        "logs/download/{domain}.log",
    benchmark:
        "benchmarks/download/{domain}.tsv"
    conda:
        "../envs/curriculab.yaml"
    resources:
        cpus_per_task=1,
        mem_mb=4000,
        runtime=60,
    params:
        source=lambda wc: STUDY.domains[wc.domain].source,
        max_docs=lambda wc: STUDY.domains[wc.domain].max_docs,
        sample=lambda wc: STUDY.domains[wc.domain].sample,
    script:
        "../workflow/scripts/download.py"


rule prepare:
    input:
        raw="results/raw/{domain}.parquet",
    output:
        docs="results/data/{domain}/docs.parquet",
    log:
        "logs/prepare/{domain}.log",
    benchmark:
        "benchmarks/prepare/{domain}.tsv"
    conda:
        "../envs/curriculab.yaml"
    resources:
        cpus_per_task=1,
        mem_mb=4000,
        runtime=30,
    params:
        test_fraction=STUDY.test_fraction,
        min_chars=STUDY.min_chars,
        subset=lambda wc: STUDY.domains[wc.domain].subset,
        near_duplicates=asdict(STUDY.near_duplicates),
    script:
        "../workflow/scripts/prepare.py"


# The study's tokenizer: trained on every domain's train split, or an existing one
# (tokenizer.pretrained; a local file is an input, so a changed file rebuilds the shards).
rule tokenizer:
    input:
        docs=(
            []
            if PRETRAINED
            else expand("results/data/{domain}/docs.parquet", domain=DOMAINS)
        ),
        pretrained=PRETRAINED_FILES,
    output:
        tokenizer="results/tokenizer/tokenizer.json",
        info="results/tokenizer/tokenizer_info.json",
    log:
        "logs/tokenizer.log",
    benchmark:
        "benchmarks/tokenizer.tsv"
    conda:
        "../envs/curriculab.yaml"
    resources:
        cpus_per_task=1,
        mem_mb=8000,
        runtime=60,
    params:
        **STUDY.tokenizer.params(),
    script:
        "../workflow/scripts/tokenizer.py"


rule shards:
    input:
        docs=get_shard_docs,  # a selection's documents for a derived domain (rules/selection.smk)
        tokenizer="results/tokenizer/tokenizer.json",
        tokenizer_info="results/tokenizer/tokenizer_info.json",
    output:
        train=directory("results/shards/{domain}/train"),  # 00000.arrow, ... (shards.file_mb)
        test=directory("results/shards/{domain}/test"),
        manifest="results/shards/{domain}/manifest.json",
    log:
        "logs/shards/{domain}.log",
    benchmark:
        "benchmarks/shards/{domain}.tsv"
    conda:
        "../envs/curriculab.yaml"
    # the batch encoder's threads: one (short rules are grouped on SLURM, a group asks for the
    # sum of its jobs' cores); more with --set-threads shards=N --set-resources shards:cpus_per_task=N
    threads: 1
    resources:
        cpus_per_task=1,
        mem_mb=4000,
        runtime=60,
    params:
        seq_len=STUDY.seq_len,
        file_mb=STUDY.shard_file_mb,
    script:
        "../workflow/scripts/shards.py"
