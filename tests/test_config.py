"""Config validation: a valid study loads; each mistake gives one line naming the key."""

from __future__ import annotations

import pytest
import yaml

from curriculab.config import ConfigError, load_study, ratio_label
from tests.helpers import REPO, SCHEMA


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


def _set(config: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        config = config[key]
    if value is _DELETE:
        del config[last]
    else:
        config[last] = value


_DELETE = object()

BAD_CASES = [
    ("train.batch_size", 0, "train.batch_size"),
    ("train.lr", "fast", "train.lr"),
    ("train.surprise", 1, "train"),
    ("grid.ratios", [], "grid.ratios"),
    ("grid.ratios", [0.1, -0.2], "grid.ratios[1]"),
    ("grid.schedules", ["shuffled", "sideways"], "grid.schedules[1]"),
    ("grid.seeds", [0, 0], "grid.seeds"),
    ("target_domain", "baking", "target_domain"),
    ("model.preset", "enormous", "model.preset"),
    ("tokenizer.vocab_size", 10, "tokenizer.vocab_size"),
    ("prepare.test_fraction", 1.5, "prepare.test_fraction"),
    ("domains.cooking.source.type", "ftp", "domains.cooking.source.type"),
    ("domains.cooking.source.n_docs", _DELETE, "domains.cooking.source"),
    ("shards", _DELETE, "<top level>"),
]


@pytest.mark.parametrize(("key", "value", "named"), BAD_CASES)
def test_bad_values_name_the_key(tiny_config, key: str, value, named: str) -> None:
    _set(tiny_config, key, value)
    with pytest.raises(ConfigError) as caught:
        load_study(tiny_config, SCHEMA)
    message = str(caught.value)
    assert "\n" not in message
    assert f"'{named}'" in message


def test_single_domain_is_rejected(tiny_config) -> None:
    del tiny_config["domains"]["history"]
    with pytest.raises(ConfigError, match="'domains'"):
        load_study(tiny_config, SCHEMA)


def test_ratio_labels_are_stable() -> None:
    assert [ratio_label(r) for r in (0.05, 0.15, 1.0, 2)] == ["0.05", "0.15", "1", "2"]
