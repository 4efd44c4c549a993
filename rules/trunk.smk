# Trunks (docs/stages/trunk.md): schedules that name one trunk share its training up to where each
# leaves it. A trunk's stream is its base mixture over the whole budget; the trunk is trained in
# segments, one target per checkpoint, each from the checkpoint before it; a cell of a schedule
# on a trunk starts from the checkpoint where it leaves the trunk (rules/train.smk). The plan is
# TRUNKS (rules/common.smk: curriculab.training.branch.TrunkPlan).


# A trunk segment (docs/stages/trunk.md): the trunk of (ratio, trunk, arm, seed) trained from its
# previous checkpoint up to step {step}, a branch point; each checkpoint is its own target.
rule trunk:
    input:
        stream=f"{TRUNK_STREAM}.arrow",
        parent=get_trunk_parent,
        tokenizer="results/tokenizer/tokenizer.json",
        train_shards=expand("results/shards/{domain}/train.arrow", domain=DOMAINS),
        test_shards=expand("results/shards/{domain}/test.arrow", domain=DOMAINS),
        manifests=expand("results/shards/{domain}/manifest.json", domain=DOMAINS),
        registration=ancient(REGISTRATION),  # the verdict family is fixed first
    output:
        checkpoint=f"{TRUNK}.pt",
        record=f"{TRUNK}.json",
    log:
        "logs/trunks/{ratio}/{trunk}/{arm}/seed{seed}/step{step}.log",
    benchmark:
        "benchmarks/trunks/{ratio}/{trunk}/{arm}/seed{seed}/step{step}.tsv"
    conda:
        "../envs/curriculab.yaml"
    threads: STUDY.resources.cpus
    resources:
        gpu=STUDY.resources.gpus,
        gpu_model=STUDY.resources.gpu_model,
        cpus_per_task=STUDY.resources.cpus,
        mem_mb=lambda wc, attempt: pack_mem_mb(STUDY, 1, attempt),
        runtime=get_trunk_runtime_min,
    params:
        domains=DOMAINS,
        preset=STUDY.model_preset,
        train=lambda wc: STUDY.train_settings[wc.arm],
        ratio_value=lambda wc: STUDY.ratio_value(wc.ratio),
        parent_step=get_trunk_parent_step,
    script:
        "../workflow/scripts/trunk.py"
