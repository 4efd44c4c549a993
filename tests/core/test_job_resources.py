"""What jobs ask of a scheduler: the estimates follow the model, the data and the retries."""

from __future__ import annotations

import pytest
import torch

from curriculab.config import load_study
from curriculab.errors import ConfigError
from curriculab.io import read_json
from curriculab.job_resources import (
    blocks_from_manifests,
    cell_sequences,
    train_job_mem_mb,
    train_job_runtime_min,
    train_runtime_min,
)
from curriculab.streams.build import build_order
from curriculab.streams.schedules import budget_spec
from curriculab.training.model import (
    PRESETS,
    build_model,
    count_parameters,
    model_flops_per_token,
    parameter_count,
    preset_flops_per_token,
)
from tests.support.helpers import SCHEMA


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_parameter_count_matches_the_built_model(preset: str) -> None:
    with torch.device("meta"):  # shapes only: the 124m preset builds in milliseconds
        model = build_model(preset, vocab_size=2048, seq_len=256, seed=0)
    assert parameter_count(preset, 2048) == count_parameters(model)
    assert preset_flops_per_token(preset, 2048, 256) == model_flops_per_token(model, 256)


def test_cell_sequences_is_the_length_of_the_stream(tiny_config, tiny_data) -> None:
    manifests = {n: tiny_data[n] / "manifest.json" for n in ("cooking", "history")}
    blocks = blocks_from_manifests(manifests, "train")
    assert blocks == {
        n: read_json(path)["splits"]["train"]["n_blocks"] for n, path in manifests.items()
    }
    fixed_data = budget_spec({"budget": "fixed_data"}, 32)
    for ratio in (0.1, 0.3):
        _, order = build_order(blocks, "cooking", ratio, "s", {"family": "shuffled"}, seed=3)
        assert cell_sequences(fixed_data, "cooking", ratio, blocks) == len(order.blocks)
    tokens = budget_spec({"budget": "fixed_tokens", "tokens": 3200}, 32)
    assert cell_sequences(tokens, "cooking", 0.1, None) == 100  # known before any shard exists
    assert cell_sequences(fixed_data, "cooking", 0.1, None) is None
    assert blocks_from_manifests({"cooking": tiny_data["cooking"] / "absent.json"}, "train") is None


def test_runtime_grows_with_tokens_and_model_and_doubles_on_retry() -> None:
    def minutes(preset="30m", sequences=100_000, on_gpu=False, cpus=1, attempt=1) -> int:
        return train_runtime_min(preset, 8192, 512, sequences, 1000, on_gpu, cpus, attempt)

    assert minutes(sequences=200_000) > minutes(sequences=100_000)
    assert minutes(preset="124m") > minutes(preset="30m")
    assert minutes(cpus=8) < minutes(cpus=1)
    assert minutes(on_gpu=True) < minutes(on_gpu=False)
    assert minutes(attempt=2) == 2 * minutes(attempt=1)
    assert minutes(preset="micro", sequences=1) == 10  # never below the floor
    unknown = train_runtime_min("tiny", 2048, 128, None, 0, False, 1, attempt=2)
    assert unknown == 2 * train_runtime_min("tiny", 2048, 128, None, 0, False, 1)


def test_study_requests_follow_the_resources_section(tiny_config) -> None:
    study = load_study(tiny_config, SCHEMA)
    blocks = {"cooking": 1000, "history": 4000}
    estimated = train_job_runtime_min(study, 0.1, blocks)
    assert train_job_runtime_min(study, 0.1, blocks, attempt=2) == 2 * estimated
    tiny_config["model"]["preset"] = "124m"
    assert train_job_mem_mb(load_study(tiny_config, SCHEMA)) > train_job_mem_mb(study)
    tiny_config["resources"] = {"train": {"runtime_min": 45, "mem_mb": 6000}}
    fixed = load_study(tiny_config, SCHEMA)
    assert train_job_runtime_min(fixed, 0.1, blocks) == 45
    assert train_job_runtime_min(fixed, 0.1, None, attempt=2) == 90
    assert train_job_mem_mb(fixed) == 6000 and train_job_mem_mb(fixed, attempt=2) == 9000


TWO = {"cpus": 2, "processes": 2}


@pytest.mark.parametrize(
    ("train", "resources", "message"),
    [
        ({}, {"cpus": 1, "processes": 2}, r"2 processes, but a job has 1 \(resources.train.cpus\)"),
        (
            {"device": "cuda"},
            {**TWO, "gpus": 1},
            r"2 processes, but a job has 1 \(resources.train.gpus",
        ),
        ({"micro_batch_size": 8}, TWO, r"2 processes cannot share 1 micro-batches per step"),
        ({"micro_batch_size": 4}, {**TWO, "packing": "batched"}, r"a batched pack trains in one"),
    ],
)
def test_processes_beyond_the_job_are_one_line(tiny_config, train, resources, message) -> None:
    tiny_config["train"].update(train)
    tiny_config["resources"] = {"train": resources}
    with pytest.raises(ConfigError, match=r"config key 'resources.train.processes': " + message):
        load_study(tiny_config, SCHEMA)
    tiny_config["resources"]["train"]["processes"] = 1
    load_study(tiny_config, SCHEMA)  # one process is always fine
