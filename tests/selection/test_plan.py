"""The study key `selection` (curriculab.selection.plan): derived domains, which shards a cell
trains on, the placements the report compares, and one-line config errors. No training."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
import yaml

from curriculab.config import ConfigError, load_study
from curriculab.selection.compare import WHOLE, placements
from curriculab.selection.plan import shard_domains
from tests.support.helpers import REPO, SCHEMA, TINY_CONFIG

SETS = {"rand": {"method": "random", "k": 50}, "ot": {"method": "ot", "k": 50}}


def select_config(schedules: dict | None = None, **select: Any) -> dict[str, Any]:
    config = copy.deepcopy(TINY_CONFIG)
    config["selection"] = {"pool": "history", "sets": SETS} | select
    config["grid"]["schedules"] = schedules or {
        "shuffled": {"family": "shuffled"},
        "spread": {"family": "shuffled", "sweep": {"select": ["rand", "ot"]}},
        "late": {"family": "placement", "a": 8, "b": 1, "sweep": {"select": ["rand", "ot"]}},
    }
    return config


def test_selections_are_derived_domains_and_cells_train_on_them() -> None:
    study = load_study(select_config(), SCHEMA)
    selection = study.selection
    assert selection.target == "cooking"  # the study's D1 when not given
    # A random set is drawn for every training seed (TINY_CONFIG's: 0 and 1); ot is one set.
    assert list(selection.domains) == ["history_rand_seed0", "history_rand_seed1", "history_ot"]
    assert set(study.schedules) == {
        "shuffled",
        "spread-selectrand",
        "spread-selectot",
        "late-selectrand",
        "late-selectot",
    }
    domains = ["cooking", "history"]
    spec = study.schedules["late-selectot"]
    for seed in (0, 1):
        assert shard_domains(selection, spec, domains, seed) == {
            "cooking": "cooking",
            "history": "history_ot",
        }
        assert shard_domains(selection, study.schedules["shuffled"], domains, seed) == {
            "cooking": "cooking",
            "history": "history",
        }
    assert selection.control(selection.set("ot")).name == "rand"


def test_every_training_seed_trains_on_its_own_random_draw() -> None:
    """A cell of seed s trains on draw s of a random set (its own derived domain, drawn for
    s); the other methods are one set for every seed. The design's fresh seeds get draws too,
    and so do the seeds of a study with more of them."""
    config = select_config()
    config["grid"]["seeds"] = [0, 1, 2]
    selection = load_study(config, SCHEMA).selection
    domains = ["cooking", "history"]
    spec = {"family": "shuffled", "select": "rand"}
    pools = [shard_domains(selection, spec, domains, seed)["history"] for seed in (0, 1, 2)]
    assert pools == ["history_rand_seed0", "history_rand_seed1", "history_rand_seed2"]
    assert {selection.draws[p] for p in pools} == {0, 1, 2}  # each drawn for its own seed
    assert selection.draws["history_ot"] is None
    config["grid"]["schedules"]["win"] = {"family": "end_window", "window": 0.2, "d1_factor": 2}
    config["design"] = {"schedule": "win", "parameters": {"window": [0.1, 0.4]}, "ratio": 0.3}
    with_design = load_study(config, SCHEMA).selection
    assert with_design.seeds == (0, 1, 2, 3, 4, 5)  # fresh seeds 3-5: a baseline may select


def test_placements_pair_selections_with_the_whole_pool() -> None:
    study = load_study(select_config(), SCHEMA)
    layout = placements(study.schedules, study.selection)
    assert layout["spread-selectot"] == {"set": "ot", "placement": "shuffled"}
    assert layout["shuffled"] == {"set": WHOLE, "placement": "shuffled"}  # named by it
    assert layout["late-selectrand"] == {"set": "rand", "placement": "late"}
    assert "d1_last" not in layout


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"pool": "nowhere"}, "selection.pool"),
        ({"pool": "cooking"}, "selection.pool"),  # the target itself
        ({"target": "nowhere"}, "selection.target"),
        ({"embedding": {"type": "hf"}}, "selection.embedding.model"),
        ({"sets": {"x": {"method": "ot", "k": 5, "tokens": 9}}}, "selection.sets.x"),
        ({"sets": {"x": {"method": "nearest", "k": 5}}}, "selection.sets.x.method"),
        ({"sets": {"Bad": {"method": "ot", "k": 5}}}, "selection.sets"),
    ],
)
def test_select_errors_name_the_key(change: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"config key '{key}")) as caught:
        load_study(select_config(**change), SCHEMA)
    assert "\n" not in str(caught.value)


def test_a_schedule_naming_an_unknown_or_undefined_selection_is_an_error() -> None:
    unknown = select_config({"a": {"family": "shuffled", "select": "nope"}})
    with pytest.raises(ConfigError, match=r"grid\.schedules\.a\.select': 'nope' is not one"):
        load_study(unknown, SCHEMA)
    undefined = select_config({"a": {"family": "shuffled", "select": "ot"}})
    del undefined["selection"]
    with pytest.raises(ConfigError, match=r"no selections are defined"):
        load_study(undefined, SCHEMA)


def test_a_derived_name_may_not_shadow_a_domain() -> None:
    config = select_config()
    config["domains"]["history_ot"] = copy.deepcopy(config["domains"]["history"])
    with pytest.raises(ConfigError, match="'history_ot' is already a domain"):
        load_study(config, SCHEMA)


def test_trunks_and_design_points_do_not_take_selections() -> None:
    config = select_config({"a": {"family": "shuffled", "select": "ot", "trunk": "t"}})
    config["streams"] = {"budget": "fixed_tokens", "tokens": 4096}
    with pytest.raises(ConfigError, match="on a trunk cannot train on a selection"):
        load_study(config, SCHEMA)
    config = select_config(
        {"a": {"family": "end_window", "window": 0.2, "d1_factor": 2, "select": "ot"}}
    )
    config["design"] = {"schedule": "a", "parameters": {"window": [0.1, 0.4]}}
    with pytest.raises(ConfigError, match="trains on a selection"):
        load_study(config, SCHEMA)


def test_each_selection_is_compared_with_the_random_one_of_its_size() -> None:
    sets = {
        "r10": {"method": "random", "k": 10},
        "r20": {"method": "random", "k": 20},
        "ot20": {"method": "ot", "k": 20},
        "ot30": {"method": "ot", "k": 30},
        "s20": {"method": "similarity", "tokens": 20},
    }
    only = {"a": {"family": "shuffled", "select": "ot20"}}
    selection = load_study(select_config(only, sets=sets), SCHEMA).selection
    control = {s.name: selection.control(s).name for s in selection.sets}
    # Same size when there is one (documents and tokens are different sizes), else the first.
    assert control == {"r10": "r10", "r20": "r20", "ot20": "r20", "ot30": "r10", "s20": "r10"}


def test_the_commented_example_in_config_yaml_is_a_valid_study() -> None:
    lines = (REPO / "config.yaml").read_text().splitlines()
    start = lines.index(next(line for line in lines if line.startswith("# selection:")))
    block = [line[2:] for line in lines[start:] if line.startswith(("# selection:", "#   "))]
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config |= yaml.safe_load("\n".join(block))
    config["grid"]["schedules"]["spread_ot"] = {"family": "shuffled", "select": "ot"}
    study = load_study(config, SCHEMA)
    draws = [f"wiki_random_seed{seed}" for seed in study.seeds]
    assert list(study.selection.domains) == [*draws, "wiki_ot"]


def test_the_old_key_select_points_at_its_new_name() -> None:
    config = select_config()
    config["select"] = config.pop("selection")
    with pytest.raises(ConfigError, match=r"config key 'select': renamed to 'selection'"):
        load_study(config, SCHEMA)
