# Config validation, the cell grid and the input functions shared by every rule file.
import re
import sys

from snakemake.utils import min_version

from curriculab.config import ConfigError, load_study, load_yaml
from curriculab.data.sources import check_sources
from curriculab.errors import one_line
from curriculab.job_resources import (
    blocks_from_manifests,
    evaluate_job_runtime_min,
    train_job_mem_mb,
    train_job_runtime_min,
)

min_version("9.0")

try:
    for configfile_path in workflow.configfiles:
        load_yaml(configfile_path)  # Snakemake's loader keeps the last of two equal keys
    STUDY = load_study(
        config, workflow.source_path("../workflow/schemas/config.schema.yaml")
    )
    check_sources({name: domain.source for name, domain in STUDY.domains.items()})
except ConfigError as error:
    sys.exit(one_line(error))

DOMAINS = list(STUDY.domain_names)
CELLS = [
    {"ratio": ratio, "schedule": schedule, "seed": seed}
    for ratio in STUDY.ratio_labels
    for schedule in STUDY.schedules
    for seed in STUDY.seeds
]


wildcard_constraints:
    domain="|".join(map(re.escape, DOMAINS)),
    ratio="|".join(map(re.escape, STUDY.ratio_labels)),
    schedule="|".join(map(re.escape, sorted(STUDY.schedules, key=len, reverse=True))),
    seed=r"\d+",
    split="train|test",


SHARD_MANIFESTS = {
    domain: f"results/shards/{domain}/manifest.json" for domain in DOMAINS
}


def get_train_runtime_min(wildcards, attempt):
    """Training wall time (minutes): estimated from the cell's tokens, doubled on each retry."""
    train_blocks = blocks_from_manifests(SHARD_MANIFESTS, "train")
    ratio = STUDY.ratio_value(wildcards.ratio)
    return train_job_runtime_min(STUDY, ratio, train_blocks, attempt)


def get_evaluate_runtime_min(wildcards, attempt):
    """Final evaluation wall time (minutes), doubled on each retry."""
    test_blocks = blocks_from_manifests(SHARD_MANIFESTS, "test")
    return evaluate_job_runtime_min(STUDY, test_blocks, attempt)


def get_model_mem_mb(wildcards, attempt):
    """Memory (MB) of a job that holds a model: estimated from the preset, more on retries."""
    return train_job_mem_mb(STUDY, attempt)


def get_cell_runs(pattern):
    """`pattern` expanded over every cell of the grid, in grid order."""
    return [pattern.format(**cell) for cell in CELLS]


def get_cell_specs():
    """(ratio, schedule, seed, run directory) of every cell, for the aggregate step."""
    run_dir = "results/runs/{ratio}/{schedule}/seed{seed}"
    return [(c["ratio"], c["schedule"], c["seed"], run_dir.format(**c)) for c in CELLS]


def get_study_summary():
    """What the report states about the study."""
    return {
        "name": STUDY.name,
        "target_domain": STUDY.target_domain,
        "domains": DOMAINS,
        "ratios": list(STUDY.ratio_labels),
        "schedules": list(STUDY.schedules),
        "budget": STUDY.budget.kind,
        "baseline": STUDY.baseline,
        "seeds": list(STUDY.seeds),
        "model_preset": STUDY.model_preset,
    }
