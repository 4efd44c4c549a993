# Config validation, the cell grid and the input functions shared by every rule file.
import re
import sys

from snakemake.utils import min_version

from curriculab.config import ConfigError, load_study, load_yaml
from curriculab.data.sources import check_sources
from curriculab.errors import one_line
from curriculab.lr import arm_description
from curriculab.job_resources import (
    blocks_from_manifests,
    train_job_mem_mb,
    train_job_runtime_min,
)

min_version("9.0")

try:
    for configfile_path in workflow.configfiles:
        load_yaml(
            configfile_path
        )  # Snakemake's loader keeps the last of two equal keys
    STUDY = load_study(
        config, workflow.source_path("../workflow/schemas/config.schema.yaml")
    )
    check_sources({name: domain.source for name, domain in STUDY.domains.items()})
except ConfigError as error:
    sys.exit(one_line(error))

DOMAINS = list(STUDY.domain_names)
# The grid, in one place: a cell is (ratio, schedule, learning-rate arm, seed). Streams do not
# depend on the arm, so the cells of every arm share one stream per (ratio, schedule, seed).
CELLS = [
    {"ratio": ratio, "schedule": schedule, "arm": arm, "seed": seed}
    for ratio in STUDY.ratio_labels
    for schedule in STUDY.schedules
    for arm in STUDY.arms
    for seed in STUDY.seeds
]
STREAMS = [
    {"ratio": ratio, "schedule": schedule, "seed": seed}
    for ratio in STUDY.ratio_labels
    for schedule in STUDY.schedules
    for seed in STUDY.seeds
]
RUN_DIR = "results/runs/{ratio}/{schedule}/{arm}/seed{seed}"
STREAM = "results/streams/{ratio}/{schedule}/seed{seed}"


wildcard_constraints:
    domain="|".join(map(re.escape, DOMAINS)),
    ratio="|".join(map(re.escape, STUDY.ratio_labels)),
    schedule="|".join(map(re.escape, sorted(STUDY.schedules, key=len, reverse=True))),
    arm="|".join(map(re.escape, sorted(STUDY.arms, key=len, reverse=True))),
    seed=r"\d+",
    split="train|test",


SHARD_MANIFESTS = {
    domain: f"results/shards/{domain}/manifest.json" for domain in DOMAINS
}


def get_train_runtime_min(wildcards, attempt):
    """Training wall time (minutes): estimated from the cell's tokens, doubled on each retry."""
    train_blocks = blocks_from_manifests(SHARD_MANIFESTS, "train")
    test_blocks = blocks_from_manifests(SHARD_MANIFESTS, "test")
    ratio = STUDY.ratio_value(wildcards.ratio)
    return train_job_runtime_min(STUDY, ratio, train_blocks, test_blocks, attempt)


def get_model_mem_mb(wildcards, attempt):
    """Memory (MB) of a job that holds a model: estimated from the preset, more on retries."""
    return train_job_mem_mb(STUDY, attempt)


def get_cell_runs(name):
    """File `name` of every cell's run directory, in grid order."""
    return [f"{RUN_DIR}/{name}".format(**cell) for cell in CELLS]


def get_cell_specs():
    """(ratio, schedule, arm, seed, run directory) of every cell, for the aggregate step."""
    return [
        (c["ratio"], c["schedule"], c["arm"], c["seed"], RUN_DIR.format(**c))
        for c in CELLS
    ]


def get_stream_summaries():
    """(ratio, schedule, seed, summary file) of every stream, in grid order."""
    return [
        (c["ratio"], c["schedule"], c["seed"], STREAM.format(**c) + ".summary.json")
        for c in STREAMS
    ]


def get_study_summary():
    """What the report states about the study."""
    return {
        "name": STUDY.name,
        "target_domain": STUDY.target_domain,
        "domains": DOMAINS,
        "ratios": list(STUDY.ratio_labels),
        "schedules": list(STUDY.schedules),
        "arms": {name: arm_description(cfg) for name, cfg in STUDY.arms.items()},
        "budget": STUDY.budget.kind,
        "baseline": STUDY.baseline,
        "seeds": list(STUDY.seeds),
        "model_preset": STUDY.model_preset,
    }
