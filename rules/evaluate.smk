# Final evaluation of each cell's saved model on every domain's test shard.


rule evaluate:
    input:
        model="results/runs/{ratio}/{schedule}/seed{seed}/model",
        tests=expand("results/shards/{domain}/test.arrow", domain=DOMAINS),
        manifests=expand("results/shards/{domain}/manifest.json", domain=DOMAINS),
    output:
        evaluation="results/runs/{ratio}/{schedule}/seed{seed}/eval.json",
    log:
        "logs/evaluate/{ratio}/{schedule}/seed{seed}.log",
    benchmark:
        "benchmarks/evaluate/{ratio}/{schedule}/seed{seed}.tsv"
    conda:
        "../envs/curriculab.yaml"
    threads: STUDY.resources.cpus
    resources:
        gpu=STUDY.resources.gpus,
        gpu_model=STUDY.resources.gpu_model,
        cpus_per_task=STUDY.resources.cpus,
        mem_mb=get_model_mem_mb,
        runtime=get_evaluate_runtime_min,
    params:
        domains=DOMAINS,
        device=STUDY.train.device,
        max_blocks=STUDY.train.final_eval_blocks,
    script:
        "../workflow/scripts/evaluate.py"
