# One training run per cell (ratio, schedule, learning-rate arm, seed); the model is saved in
# Hugging Face layout (safetensors). The cells of every arm read the same stream.


rule train:
    input:
        stream=f"{STREAM}.arrow",
        summary=f"{STREAM}.summary.json",
        tokenizer="results/tokenizer/tokenizer.json",
        train_shards=expand("results/shards/{domain}/train.arrow", domain=DOMAINS),
        test_shards=expand("results/shards/{domain}/test.arrow", domain=DOMAINS),
        manifests=expand("results/shards/{domain}/manifest.json", domain=DOMAINS),
    output:
        model=directory(f"{RUN_DIR}/model"),
        curve=f"{RUN_DIR}/curve.parquet",
        metrics=f"{RUN_DIR}/metrics.json",
    log:
        "logs/train/{ratio}/{schedule}/{arm}/seed{seed}.log",
    benchmark:
        "benchmarks/train/{ratio}/{schedule}/{arm}/seed{seed}.tsv"
    conda:
        "../envs/curriculab.yaml"
    threads: STUDY.resources.cpus
    resources:
        # Locally, `--resources gpu=N` starts no more GPU jobs than there are GPUs;
        # on SLURM, gpu and gpu_model become `--gpus=[MODEL:]N`.
        gpu=STUDY.resources.gpus,
        gpu_model=STUDY.resources.gpu_model,
        cpus_per_task=STUDY.resources.cpus,
        mem_mb=get_model_mem_mb,
        runtime=get_train_runtime_min,
    params:
        domains=DOMAINS,
        preset=STUDY.model_preset,
        train=lambda wc: STUDY.train_settings[wc.arm],
    script:
        "../workflow/scripts/train.py"
