"""Config validation: a valid study loads; each mistake gives one line naming the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from curriculab.config import ConfigError, load_study, ratio_label
from tests.support.helpers import DELETE, REPO, SCHEMA, with_key


def test_default_config_is_valid() -> None:
    study = load_study(yaml.safe_load((REPO / "config.yaml").read_text()), SCHEMA)
    assert study.target_domain in study.domains
    assert len(study.ratios) >= 3 and len(study.schedules) >= 3 and len(study.seeds) >= 3


def test_tiny_config_loads_with_defaults(tiny_config) -> None:
    del tiny_config["train"]["log_every_steps"]
    study = load_study(tiny_config, SCHEMA)
    assert study.train.log_every_steps == 10
    assert study.ratio_labels == ("0.1", "0.3")
    assert study.ratio_value("0.3") == 0.3
    assert study.domain_names == ("cooking", "history")


def test_every_config_key_is_commented() -> None:
    for number, line in enumerate((REPO / "config.yaml").read_text().splitlines(), start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            assert " # " in line, f"config.yaml line {number} has no comment: {line!r}"


BAD_CASES = [
    ("train.batch_size", 0, "train.batch_size"),
    ("train.lr", "fast", "train.lr"),
    ("train.surprise", 1, "train"),
    ("grid.ratios", [], "grid.ratios"),
    ("grid.ratios", [0.1, -0.2], "grid.ratios[1]"),
    ("grid.schedules", ["shuffled", "d1_last"], "grid.schedules"),
    ("grid.schedules.late", {"family": "sideways"}, "grid.schedules.late.family"),
    (
        "grid.schedules.late",
        {"family": "end_window", "window": 1.5, "d1_share": 0.5},
        "grid.schedules.late.window",
    ),
    (
        "grid.schedules.late",
        {"family": "end_window", "window": 0, "d1_share": 0.5},
        "grid.schedules.late.window",
    ),
    (
        "grid.schedules.late",
        {"family": "end_window", "window": 0.2, "d1_share": -0.1},
        "grid.schedules.late.d1_share",
    ),
    (
        "grid.schedules.late",
        {"family": "end_window", "window": 0.2, "d1_share": 0.5, "d1_factor": 2},
        "grid.schedules.late",
    ),
    (
        "grid.schedules.late",
        {"family": "end_window", "window": 0.2, "d1_share": 0.5, "sweep": {"window": [0.1, 1.2]}},
        "grid.schedules.late.window",
    ),
    (
        "grid.schedules.late",
        {
            "family": "stages",
            "phases": [{"fraction": 1.0, "shares": {"cooking": 0.5, "history": 0.4}}],
        },
        "grid.schedules.late",
    ),
    (
        "grid.schedules.late",
        {
            "family": "stages",
            "phases": [{"fraction": 1.0, "shares": {"cooking": -0.5, "history": 1.0}}],
        },
        "grid.schedules.late.phases[0].shares.cooking",
    ),
    (
        "grid.schedules.late",
        {"family": "stages", "phases": [{"fraction": 0.5, "shares": {"cooking": 1.0}}]},
        "grid.schedules.late",
    ),
    (
        "grid.schedules.late",
        {"family": "stages", "phases": [{"fraction": 1.0, "shares": {"baking": 1.0}}]},
        "grid.schedules.late",
    ),
    ("grid.schedules.late", {"family": "placement", "a": 0, "b": 1}, "grid.schedules.late.a"),
    ("grid.schedules.late", {"family": "placement", "a": 1, "b": 1, "c": 1}, "grid.schedules.late"),
    (
        "grid.schedules.late",
        {"family": "sequential", "order": ["cooking"]},
        "grid.schedules.late.order",
    ),
    (
        "grid.schedules.late",
        {"family": "sequential", "order": ["cooking", "baking"]},
        "grid.schedules.late",
    ),
    (
        "grid.schedules.late",
        {"family": "ramp", "start": 0.0, "shape": "square"},
        "grid.schedules.late.shape",
    ),
    ("streams.budget", "fixed_tokens", "streams"),
    ("streams.tokens", 0, "streams.tokens"),
    ("grid.seeds", [0, 0], "grid.seeds"),
    ("target_domain", "baking", "target_domain"),
    ("model.preset", "enormous", "model.preset"),
    ("tokenizer.vocab_size", 10, "tokenizer.vocab_size"),
    ("prepare.test_fraction", 1.5, "prepare.test_fraction"),
    ("domains.cooking.source.type", "ftp", "domains.cooking.source.type"),
    ("domains.cooking.source.n_docs", DELETE, "domains.cooking.source"),
    ("shards", DELETE, "<top level>"),
    ("resources.train.gpus", 2, "resources.train.gpus"),
    ("resources.train.gpus", 1, "resources.train.gpus"),  # the tiny study trains on the CPU
    ("resources.train.gpu_model", "a100", "resources.train.gpu_model"),
    ("resources.train.gpu_model", "'a100'", "resources.train.gpu_model"),
    ("resources.train.cpus", 0, "resources.train.cpus"),
    ("resources.train.mem_mb", 10, "resources.train.mem_mb"),
    ("resources.train.runtime_min", "1h", "resources.train.runtime_min"),
    ("resources.cluster", "big", "resources"),
    ("grid.lr_arms", {}, "grid.lr_arms"),
    ("analysis.verdict_schedules", ["shuffled"], "analysis.verdict_schedules"),
    ("analysis.verdict_schedules", ["d2_first"], "analysis.verdict_schedules"),
    ("grid.lr_arms.fast", {"lr_schedule": "step"}, "grid.lr_arms.fast.lr_schedule"),
    ("grid.lr_arms.fast", {"momentum": 0.9}, "grid.lr_arms.fast"),
    ("grid.lr_arms.cool", {"decay_start": "window"}, "grid.lr_arms.cool.decay_start"),
    ("domains.cooking.subset", {"buckets": 2, "keep": [2]}, "domains.cooking.subset.keep"),
    ("domains.cooking.subset", {"buckets": 1, "keep": [0]}, "domains.cooking.subset.buckets"),
    ("utility", {"weights": {"baking": 1.0}}, "utility"),
    ("utility", {"weights": {"cooking": 0.0}}, "utility"),
    ("utility", {"weights": {"cooking": -1.0}}, "utility.weights.cooking"),
    ("utility", {"count_power": -0.5, "weights": {"cooking": 1}}, "utility"),
    (
        "grid.schedules.late",
        {"family": "utility_order", "strength": 2},
        "grid.schedules.late.strength",
    ),
    (
        "grid.schedules.late",
        {"family": "end_windows", "window": 0.2, "shares": {"cooking": 0.5}},
        "grid.schedules.late",
    ),
    (
        "grid.schedules.late",
        {"family": "end_windows", "window": 0.2, "shares": {"baking": 1.0}},
        "grid.schedules.late",
    ),
    ("grid.schedules.late", {"family": "concentrate", "domain": "baking"}, "grid.schedules.late"),
    ("analysis.audit.lr", 2, "analysis.audit.lr"),
    ("analysis.audit.tokens", -0.1, "analysis.audit.tokens"),
    ("analysis.audit.epochs", "one", "analysis.audit.epochs"),
    ("analysis.audit", {"sloppy": 1}, "analysis.audit"),
]


@pytest.mark.parametrize(("key", "value", "named"), BAD_CASES)
def test_bad_values_name_the_key(tiny_config, key: str, value, named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_study(with_key(tiny_config, key, value), SCHEMA)
    message = str(caught.value)
    assert "\n" not in message
    assert f"'{named}'" in message


def test_learning_rate_arms_override_only_their_keys(tiny_config) -> None:
    assert list(load_study(tiny_config, SCHEMA).arms) == ["cosine"]  # no lr_arms: one arm
    tiny_config["grid"]["lr_arms"] = {
        "constant": {"lr_schedule": "constant"},
        "wsd_window": {"lr_schedule": "wsd", "decay_start": "window", "lr": 0.02},
    }
    study = load_study(tiny_config, SCHEMA)
    assert list(study.arms) == ["constant", "wsd_window"]
    assert study.arms["constant"].lr == study.train.lr
    assert study.arms["wsd_window"].lr == 0.02 and study.arms["wsd_window"].decay_start == "window"
    assert study.arms["wsd_window"].batch_size == study.train.batch_size
    assert study.train_settings["constant"]["lr_schedule"] == "constant"


def test_cuda_training_needs_a_gpu_request(tiny_config) -> None:
    tiny_config["train"]["device"] = "cuda"
    assert load_study(tiny_config, SCHEMA).resources.gpus == 1  # gpus: null follows the device
    tiny_config["resources"] = {"train": {"gpus": 0}}
    with pytest.raises(ConfigError, match=r"'resources\.train\.gpus'"):
        load_study(tiny_config, SCHEMA)


def test_single_domain_is_rejected(tiny_config) -> None:
    del tiny_config["domains"]["history"]
    with pytest.raises(ConfigError, match="'domains'"):
        load_study(tiny_config, SCHEMA)


def test_sweeps_expand_into_named_schedules(tiny_config) -> None:
    tiny_config["grid"]["schedules"] = {
        "late": {
            "family": "end_window",
            "d1_share": 0.5,
            "window": 0.1,
            "sweep": {"window": [0.1, 0.25], "d1_share": [0.4, 0.6]},
        },
        "flat": {"family": "shuffled"},
    }
    tiny_config["streams"] = {"budget": "fixed_tokens", "tokens": 640, "max_epochs": 3}
    study = load_study(tiny_config, SCHEMA)
    assert list(study.schedules) == [
        "late-window0.1-d1_share0.4",
        "late-window0.1-d1_share0.6",
        "late-window0.25-d1_share0.4",
        "late-window0.25-d1_share0.6",
        "flat",
    ]
    assert study.schedules["late-window0.25-d1_share0.4"] == {
        "family": "end_window",
        "window": 0.25,
        "d1_share": 0.4,
    }
    assert (study.budget.kind, study.budget.total_blocks, study.budget.max_epochs) == (
        "fixed_tokens",
        20,
        3,
    )


def test_example_studies_are_valid() -> None:
    for path in sorted((REPO / "studies").glob("*.yaml")):
        study = load_study(yaml.safe_load(path.read_text()), SCHEMA)
        assert study.schedules, path


def test_ratio_labels_are_stable() -> None:
    assert [ratio_label(r) for r in (0.05, 0.15, 1.0, 2)] == ["0.05", "0.15", "1", "2"]


def test_a_key_given_twice_in_yaml_is_an_error(tmp_path: Path) -> None:
    from curriculab.config import load_yaml

    path = tmp_path / "study.yaml"
    path.write_text("grid:\n  seeds: [0]\n  ratios: [0.1]\n  seeds: [1]\n")
    with pytest.raises(ConfigError, match=r"study\.yaml line 4: key 'seeds' is given twice"):
        load_yaml(path)
    path.write_text("grid:\n  seeds: [0]\nother:\n  seeds: [1]\n")  # same key, other mapping
    assert load_yaml(path) == {"grid": {"seeds": [0]}, "other": {"seeds": [1]}}


def test_sequence_length_is_bounded_by_the_preset_context(tiny_config) -> None:
    from curriculab.training.model import PRESETS

    tiny_config["shards"]["seq_len"] = PRESETS["micro"].context
    load_study(tiny_config, SCHEMA)
    tiny_config["shards"]["seq_len"] += 1
    with pytest.raises(ConfigError, match=r"'shards\.seq_len': 513 tokens is longer"):
        load_study(tiny_config, SCHEMA)


def _trunked(tiny_config, **schedules) -> dict:
    """The tiny config under a 16-step token budget with the given schedules."""
    tiny_config["streams"] = {"budget": "fixed_tokens", "tokens": 16 * 8 * 32}
    tiny_config["grid"]["schedules"] = schedules
    return tiny_config


WINDOW = {"family": "end_window", "window": 0.25, "d1_share": 0.5, "trunk": "main"}
TRUNK_CASES = [
    ({"budget": "fixed_data"}, {"w": WINDOW}, "grid.schedules.w.trunk': branching needs"),
    ({"tokens": 16 * 8 * 32 + 32}, {"w": WINDOW}, "streams.tokens': with trunks the budget"),
    (
        {},
        {"r": {"family": "ramp", "start": 0.1, "end": 0.3, "trunk": "main"}},
        "('trunk' was unexpected)",
    ),
    ({}, {"w": {**WINDOW, "window": 0.01}}, "schedule 'w': window 0.01 starts at step 16"),
    ({}, {"w": WINDOW, "v": {**WINDOW, "base_d1_share": 0.2}}, "differ in base_d1_share"),
    ({}, {"w": {**WINDOW, "remove": "history"}}, "grid.schedules.w.remove': no schedule"),
    ({}, {"w": {**WINDOW, "remove": "art"}}, "'remove': 'art' is not one of the domains"),
    ({}, {"w": {**WINDOW, "hold_total": True}}, "a window on a trunk follows the trunk's base"),
]


@pytest.mark.parametrize(("streams", "schedules", "named"), TRUNK_CASES)
def test_a_trunk_that_cannot_serve_its_schedules_is_one_line(
    tiny_config, streams, schedules, named
) -> None:
    config = _trunked(tiny_config, **schedules)
    config["streams"] = {**config["streams"], **streams}
    if config["streams"]["budget"] == "fixed_data":
        del config["streams"]["tokens"]
    with pytest.raises(ConfigError, match=re.escape(named)) as error:
        load_study(config, SCHEMA)
    assert "\n" not in str(error.value)


def test_trunks_and_removals_are_typed(tiny_config) -> None:
    drop = {**WINDOW, "remove": "history"}
    study = load_study(_trunked(tiny_config, w=WINDOW, drop=drop, s={"family": "shuffled"}), SCHEMA)
    assert study.trunks == {"main": ("w", "drop")}
    assert study.removals == {"drop": {"domain": "history", "reference": "w"}}
    assert study.budget.step_blocks == tiny_config["train"]["batch_size"]


def test_only_schedules_that_place_by_utility_carry_it(tiny_config) -> None:
    """A change of utility reruns the streams that depend on it and no other."""
    utility = {"weights": {"cooking": 1.0, "history": 0.5}}
    tiny_config["utility"] = utility
    tiny_config["grid"]["schedules"].update(
        by_utility={"family": "utility_order", "strength": 0.5},
        windows={"family": "end_windows", "window": 0.2, "shares": "utility"},
        fixed={"family": "end_windows", "window": 0.2, "shares": {"cooking": 1.0}},
        probe={"family": "concentrate", "domain": "history"},
    )
    study = load_study(tiny_config, SCHEMA)
    assert study.utility == utility
    carrying = {name for name, spec in study.schedules.items() if "utility" in spec}
    assert carrying == {"by_utility", "windows"}
    assert study.schedules["by_utility"]["utility"] == utility


def test_tolerances_out_of_range_are_one_line_also_without_the_schema() -> None:
    from curriculab.analysis.controls import check_audit

    for key, value in (("lr", 0.9), ("exposure", -1), ("tokens", True)):
        with pytest.raises(ConfigError, match=rf"^config key 'analysis.audit.{key}': "):
            check_audit({key: value})


def test_matched_controls_where_the_cooldown_follows_the_window(tiny_config) -> None:
    tiny_config["grid"]["lr_arms"] = {
        "constant": {"lr_schedule": "constant"},
        "cool": {"lr_schedule": "wsd", "decay_start": "window"},
    }
    study = load_study(tiny_config, SCHEMA)
    others = [s for s in study.schedules if s != study.baseline]
    assert sorted(study.controls) == sorted(f"{study.baseline}@{s}" for s in others)
    assert {c.arms for c in study.controls.values()} == {("cool",)}
    for control in study.controls.values():
        spec = control.spec(study.schedules)
        assert spec == {**study.schedules[study.baseline], "lr_from": control.treatment}
    off = with_key(tiny_config, "analysis.audit", {"matched_controls": False})
    assert load_study(off, SCHEMA).controls == {}
    tiny_config["grid"]["lr_arms"] = {"fixed": {"lr_schedule": "wsd"}}
    assert load_study(tiny_config, SCHEMA).controls == {}


def test_a_matched_control_stays_on_the_trunk_where_its_cooldown_is_known(tiny_config) -> None:
    base = {"family": "shuffled", "trunk": "main"}
    off = {"family": "end_window", "window": 0.25, "d1_share": 0.1}  # holds D1's total
    config = _trunked(tiny_config, shuffled=base, w=WINDOW, held=off)
    config["grid"]["lr_arms"] = {"cool": {"lr_schedule": "wsd", "decay_start": "window"}}
    study = load_study(config, SCHEMA)
    assert study.controls["shuffled@w"].spec(study.schedules)["trunk"] == "main"
    assert study.controls["shuffled@held"].spec(study.schedules)["trunk"] == "main"
    from curriculab.training.branch import TrunkPlan

    plan = TrunkPlan.of(study)
    # The control leaves the trunk where its treatment's cooldown starts, not before: the
    # window's own start, on the trunk or off it.
    assert plan.starts["shuffled@w", "cool"] == plan.starts["w", "cool"] == 12
    assert plan.starts["shuffled@held", "cool"] == 12
    ramp = {"family": "ramp", "start": 0.0, "end": 0.3}  # no window known before its stream
    config["grid"]["schedules"]["ramp"] = ramp
    study = load_study(config, SCHEMA)
    assert "trunk" not in study.controls["shuffled@ramp"].spec(study.schedules)
    assert ("shuffled@ramp", "cool") not in TrunkPlan.of(study).starts
