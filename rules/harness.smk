# lm-evaluation-harness on every cell's final model (optional: study key `harness`;
# docs/stages/harness.md). The shipped perplexity task (workflow/harness/curriculab_heldout.yaml) is written
# out once per domain over that domain's held-out documents; every cell's model/ directory is
# then evaluated by the harness itself (`--model hf`), as anyone would evaluate a checkpoint.
from curriculab.harness.jobs import harness_task_job


rule harness_task:
    input:
        docs="results/data/{domain}/docs.parquet",
        base=HARNESS_BASE_TASK,
    output:
        data="results/harness/data/{domain}.jsonl",
        task="results/harness/tasks/curriculab_heldout_{domain}.yaml",
    log:
        "logs/harness/tasks/{domain}.log",
    benchmark:
        "benchmarks/harness/tasks/{domain}.tsv"
    resources:
        cpus_per_task=1,
        mem_mb=2000,
        runtime=10,
    run:
        harness_task_job(input, output, wildcards, log)


rule harness:
    input:
        model=f"{RUN_DIR}/model",
        tasks=get_harness_tasks(),
    output:
        scores=f"{RUN_DIR}/harness.json",
    log:
        "logs/harness/{ratio}/{schedule}/{arm}/seed{seed}.log",
    benchmark:
        "benchmarks/harness/{ratio}/{schedule}/{arm}/seed{seed}.tsv"
    conda:
        "../envs/curriculab.yaml"
    threads: STUDY.resources.cpus
    resources:
        gpu=STUDY.resources.gpus,
        gpu_model=STUDY.resources.gpu_model,
        cpus_per_task=STUDY.resources.cpus,
        mem_mb=4000,
        runtime=60,
    params:
        tasks=get_harness_spec("tasks"),
        batch_size=get_harness_spec("batch_size"),
        limit=get_harness_spec("limit"),
        task_dir="results/harness/tasks",
        device=STUDY.train.device,
    script:
        "../workflow/scripts/harness.py"
