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
    threads: 1
    resources:
        # With `--resources gpu=N`, no more CUDA training jobs start than there are GPUs.
        gpu=1 if STUDY.train.device == "cuda" else 0,
    params:
        domains=DOMAINS,
        preset=STUDY.model_preset,
        train=config["train"],
    script:
        "../workflow/scripts/train.py"
