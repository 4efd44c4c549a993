# Evaluation of each cell: its final test losses (measured by the training job on the weights
# it holds) beside a unigram model of the tokens the cell trained on. Torch-free and quick: it
# runs inside Snakemake's own process (`run:`), so no interpreter is started for it.
from curriculab.evaluate import evaluate_job


rule evaluate:
    input:
        metrics=f"{RUN_DIR}/metrics.json",
        stream=f"{STREAM}.arrow",
        train_shards=get_cell_shards("train"),  # a selection's for its pool
        tests=get_cell_shards("test"),
        manifests=get_cell_shards("manifest.json"),
    output:
        evaluation=f"{RUN_DIR}/eval.json",
    log:
        "logs/evaluate/{ratio}/{schedule}/{arm}/seed{seed}.log",
    benchmark:
        "benchmarks/evaluate/{ratio}/{schedule}/{arm}/seed{seed}.tsv"
    resources:
        cpus_per_task=1,
        mem_mb=2000,
        runtime=10,
    params:
        domains=DOMAINS,
        eval_blocks=STUDY.train.eval_blocks,
        final_eval_blocks=STUDY.train.final_eval_blocks,
    run:
        evaluate_job(input, output, params, log)
