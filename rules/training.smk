# Training: one job per pack of cells (rules/common.smk: PACKS), each cell with its own outputs
# in its run directory; the model is saved in Hugging Face layout (safetensors). The cells of
# every arm read the same stream. A pack is a resource decision (how many cells one process
# trains), never a change to what a cell computes. A cell of a schedule on a trunk starts from
# the trunk's checkpoint at its branch point (rule trunk) and trains only the rest.

for pack in PACKS:

    rule:
        name:
            f"train_{pack.name}"
        input:
            streams=pack_files(pack, f"{STREAM}.arrow"),
            summaries=pack_files(pack, f"{STREAM}.summary.json"),
            tokenizer="results/tokenizer/tokenizer.json",
            tokenizer_info="results/tokenizer/tokenizer_info.json",
            train_shards=pack_shards(pack, "train"),  # and its cells' selections'
            test_shards=pack_shards(pack, "test"),
            manifests=pack_shards(pack, "manifest.json"),
            trunks=pack_trunks(pack),
            registration=ancient(REGISTRATION),  # the verdict family is fixed first
        output:
            models=[directory(path) for path in pack_files(pack, f"{RUN_DIR}/model")],
            curves=pack_files(pack, f"{RUN_DIR}/curve.parquet"),
            metrics=pack_files(pack, f"{RUN_DIR}/metrics.json"),
        log:
            job=f"logs/training/packs/{pack.name}.log",
            cells=pack_files(
                pack, "logs/training/{ratio}/{schedule}/{arm}/seed{seed}.log"
            ),
        benchmark:
            f"benchmarks/training/packs/{pack.name}.tsv"
        conda:
            "../envs/curriculab.yaml"
        threads: STUDY.resources.cpus
        resources:
            # Locally, `--resources gpu=N` starts no more GPU jobs than there are GPUs;
            # on SLURM, gpu and gpu_model become `--gpus=[MODEL:]N`.
            gpu=STUDY.resources.gpus,
            gpu_model=STUDY.resources.gpu_model,
            cpus_per_task=STUDY.resources.cpus,
            mem_mb=get_pack_mem_mb(pack),
            runtime=get_pack_runtime_min(pack),
            # serial or batched (resources.train.packing): how, not what; no rerun on change
            packing=STUDY.resources.packing,
            # processes per cell (data parallel, torchrun): how, not what; no rerun on change
            processes=STUDY.resources.processes,
        params:
            cells=pack_cells(pack),
            pack=pack.name,
            domains=DOMAINS,
            preset=pack_preset(pack),
            train=pack_train_settings(pack),
        script:
            "../workflow/scripts/training.py"


# Trunks (docs/stages/trunk.md): schedules that name one trunk share its training up to where each
# leaves it. A trunk's stream is its base mixture over the whole budget; the trunk is trained in
# segments, one target per checkpoint, each from the checkpoint before it; a cell of a schedule
# on a trunk starts from the checkpoint where it leaves the trunk (rules/training.smk). The plan is
# TRUNKS (rules/common.smk: curriculab.training.branch.TrunkPlan).


# A trunk segment (docs/stages/trunk.md): the trunk of (ratio, trunk, arm, seed) trained from its
# previous checkpoint up to step {step}, a branch point; each checkpoint is its own target.
rule trunk:
    input:
        stream=f"{TRUNK_STREAM}.arrow",
        parent=get_trunk_parent,
        tokenizer="results/tokenizer/tokenizer.json",
        train_shards=expand("results/shards/{domain}/train", domain=DOMAINS),
        test_shards=expand("results/shards/{domain}/test", domain=DOMAINS),
        manifests=expand("results/shards/{domain}/manifest.json", domain=DOMAINS),
        registration=ancient(REGISTRATION),  # the verdict family is fixed first
    output:
        checkpoint=f"{TRUNK}.pt",
        record=f"{TRUNK}.json",
    log:
        "logs/training/trunks/{ratio}/{trunk}/{arm}/seed{seed}/step{step}.log",
    benchmark:
        "benchmarks/training/trunks/{ratio}/{trunk}/{arm}/seed{seed}/step{step}.tsv"
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
