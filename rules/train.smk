# One training run per cell; the model is saved in Hugging Face layout (safetensors).


rule train:
    input:
        stream="results/streams/{ratio}/{schedule}/seed{seed}.arrow",
        tokenizer="results/tokenizer/tokenizer.json",
        train_shards=expand("results/shards/{domain}/train.arrow", domain=DOMAINS),
        test_shards=expand("results/shards/{domain}/test.arrow", domain=DOMAINS),
        manifests=expand("results/shards/{domain}/manifest.json", domain=DOMAINS),
    output:
        model=directory("results/runs/{ratio}/{schedule}/seed{seed}/model"),
        curve="results/runs/{ratio}/{schedule}/seed{seed}/curve.parquet",
        metrics="results/runs/{ratio}/{schedule}/seed{seed}/metrics.json",
    log:
        "logs/train/{ratio}/{schedule}/seed{seed}.log",
    benchmark:
        "benchmarks/train/{ratio}/{schedule}/seed{seed}.tsv"
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
        train=config["train"],
    script:
        "../workflow/scripts/train.py"
