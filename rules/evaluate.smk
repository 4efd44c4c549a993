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
    threads: 1
    params:
        domains=DOMAINS,
        max_blocks=STUDY.train.final_eval_blocks,
    script:
        "../workflow/scripts/evaluate.py"
