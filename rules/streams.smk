# One ordered stream per cell (ratio, schedule, seed): indices into the shared train shards.
# A quick job (well under a second of work): it runs inside Snakemake's own process (`run:`),
# so no interpreter, numpy or pyarrow is started for it (bench/README.md: fixed cost).
from curriculab.streams.jobs import matched_stream_job, stream_job, trunk_stream_job


rule stream:
    input:
        manifests=get_cell_shards("manifest.json"),  # a selection's for its pool
    output:
        stream=f"{STREAM}.arrow",
        summary=f"{STREAM}.summary.json",
    log:
        "logs/streams/{ratio}/{schedule}/seed{seed}.log",
    benchmark:
        "benchmarks/streams/{ratio}/{schedule}/seed{seed}.tsv"
    wildcard_constraints:
        schedule="|".join(map(re.escape, GRID_SCHEDULES)),  # design points: rule design_stream
    resources:
        cpus_per_task=1,
        mem_mb=2000,
        runtime=10,
    params:
        domains=DOMAINS,
        target=STUDY.target_domain,
        ratio=lambda wc: STUDY.ratio_value(wc.ratio),
        spec=lambda wc: STUDY.schedules[wc.schedule],
        budget=get_stream_budget,
        seq_len=STUDY.seq_len,
    run:
        stream_job(input, output, params, wildcards, log)


# A matched control's stream (analysis/controls.py): the baseline's stream, linked, with the
# summary of the baseline but for where the treatment's window starts (its cooldown's start).
rule matched_stream:
    input:
        stream=lambda wc: STREAM.format(**{**wc, "schedule": STUDY.baseline}) + ".arrow",
        summary=lambda wc: STREAM.format(**{**wc, "schedule": STUDY.baseline})
        + ".summary.json",
        lr=lambda wc: STREAM.format(
            **{**wc, "schedule": CONTROLS[wc.schedule].treatment}
        )
        + ".summary.json",
    output:
        stream=f"{STREAM}.arrow",
        summary=f"{STREAM}.summary.json",
    log:
        "logs/streams/{ratio}/{schedule}/seed{seed}.log",
    benchmark:
        "benchmarks/streams/{ratio}/{schedule}/seed{seed}.tsv"
    wildcard_constraints:
        schedule="|".join(map(re.escape, CONTROL_SCHEDULES)) or "-",
    resources:
        cpus_per_task=1,
        mem_mb=1000,
        runtime=10,
    run:
        matched_stream_job(input, output, wildcards, log)


# A trunk's stream (docs/stages/trunk.md): its base mixture over the whole budget, the prefix of the
# stream of every schedule that names it (curriculab.streams.prefix).
rule trunk_stream:
    input:
        manifests=expand("results/shards/{domain}/manifest.json", domain=DOMAINS),
    output:
        stream=f"{TRUNK_STREAM}.arrow",
        summary=f"{TRUNK_STREAM}.summary.json",
    log:
        "logs/streams/trunks/{ratio}/{trunk}/seed{seed}.log",
    benchmark:
        "benchmarks/streams/trunks/{ratio}/{trunk}/seed{seed}.tsv"
    resources:
        cpus_per_task=1,
        mem_mb=2000,
        runtime=10,
    params:
        domains=DOMAINS,
        target=STUDY.target_domain,
        ratio=lambda wc: STUDY.ratio_value(wc.ratio),
        base_d1_share=lambda wc: STUDY.schedules[STUDY.trunks[wc.trunk][0]].get(
            "base_d1_share"
        ),
        budget=config["streams"],
        seq_len=STUDY.seq_len,
        batch_size=STUDY.train.batch_size,
    run:
        trunk_stream_job(input, output, params, wildcards, log)
