"""The schema and the code state some things twice (defaults, enums, the list of schedule
families): these tests tie each pair, so changing one side alone fails here."""

from __future__ import annotations

import typing
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from curriculab.config import TRAIN_DEFAULTS, TrainConfig
from curriculab.job_resources import TrainResources
from curriculab.streams.schedules import FAMILIES
from curriculab.training.lr import lr_at

SCHEMA = yaml.safe_load(
    (Path(__file__).resolve().parents[2] / "workflow/schemas/config.schema.yaml").read_text()
)
TRAIN = SCHEMA["properties"]["train"]["properties"]


def test_train_keys_are_the_train_config_fields() -> None:
    assert set(TRAIN) == {f.name for f in fields(TrainConfig)}


def test_train_defaults_are_the_schema_defaults() -> None:
    schema_defaults = {key: spec["default"] for key, spec in TRAIN.items() if "default" in spec}
    assert schema_defaults == TRAIN_DEFAULTS
    required = set(SCHEMA["properties"]["train"].get("required", []))
    assert required.isdisjoint(TRAIN_DEFAULTS), "a required key cannot have a default"


def test_schedule_families_are_the_registered_ones() -> None:
    defs = SCHEMA["$defs"]
    for where in ("schedule", "schedule_entry"):
        assert set(defs[where]["properties"]["family"]["enum"]) == set(FAMILIES), where
    branches = {rule["if"]["properties"]["family"]["const"] for rule in defs["schedule"]["allOf"]}
    assert branches == set(FAMILIES), "every family needs its own parameter schema"


def test_resource_defaults_are_the_dataclass_defaults() -> None:
    schema = SCHEMA["properties"]["resources"]["properties"]["train"]["properties"]
    code = {f.name: f.default for f in fields(TrainResources)}
    assert set(schema) == set(code)
    for key, spec in schema.items():
        if key != "gpus":  # null in the schema: follows train.device (config.train_resources)
            assert spec.get("default") == code[key], key


@pytest.mark.parametrize("schedule", TRAIN["lr_schedule"]["enum"])
def test_every_schema_lr_schedule_is_implemented(schedule: str) -> None:
    cfg = TrainConfig(**{**TRAIN_DEFAULTS, **_required(), "lr_schedule": schedule})
    assert 0 < lr_at(5, 10, cfg) <= cfg.lr


def _required() -> dict[str, typing.Any]:
    return {
        "batch_size": 4,
        "lr": 1e-3,
        "warmup_fraction": 0.1,
        "min_lr_fraction": 0.1,
        "weight_decay": 0.1,
        "grad_clip": 1.0,
        "eval_points": 2,
        "eval_blocks": 2,
    }
