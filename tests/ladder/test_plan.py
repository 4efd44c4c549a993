"""The ladder's plan and its config checks (curriculab.ladder.plan): cell names, what each cell
trains on, and one-line errors; the end window with D1's total held. No training."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from curriculab.config import ConfigError, load_study
from curriculab.ladder.plan import (
    CHECK,
    Ladder,
    cell_epochs,
    cell_plan,
    natural_weights,
    pool_blocks,
    split_name,
)
from curriculab.streams.build import build_order
from curriculab.streams.schedules import BudgetSpec, check_schedule
from tests.support.helpers import SCHEMA, TINY_CONFIG

SCALES = [{"tokens": 2048}, {"tokens": 4096}, {"tokens": 8192}]
BLOCKS = {"cooking": 300, "history": 900}


def ladder_config(**ladder: Any) -> dict[str, Any]:
    config = copy.deepcopy(TINY_CONFIG)
    config["ladder"] = {"scales": SCALES, "target": {"tokens": 16384}, "ratio": 0.3} | ladder
    return config


def test_every_scale_has_its_cells_named_and_the_check_its_mixtures() -> None:
    study = load_study(ladder_config(), SCHEMA)
    ladder = study.ladder
    assert [s.name for s in ladder.scales] == ["s1", "s2", "s3"]
    assert [s.preset for s in (*ladder.scales, ladder.target)] == ["micro"] * 4
    names = ladder.names("s2", ["cooking", "history"])
    # 1 base + 4 levels x 2 domains; 5 windows + 5 factors - their shared point
    assert len(names) == 9 + 9 and len(set(names)) == len(names)
    assert names[0] == "ladder_s2_base" and "ladder_s2_order-w0.2-f2" in names
    assert ladder.names("target", ["cooking"]) == [f"ladder_target_{m}" for m in CHECK]
    assert {split_name(n)[0] for n in ladder.all_names(["cooking", "history"])} == {
        "s1", "s2", "s3", "target"
    }  # fmt: skip
    assert Ladder.of(ladder.params()) == ladder  # through a rule's params and back
    assert ladder.seeds == (0, 1) and ladder.ratio == "0.3"


def test_each_cell_trains_on_its_own_shares_and_tokens() -> None:
    ladder = load_study(ladder_config(), SCHEMA).ladder
    natural = natural_weights(BLOCKS, "cooking", 0.3)
    assert sum(natural.values()) == pytest.approx(1.0)
    assert natural["cooking"] == pytest.approx(270 / 1170)  # 0.3 x 900 blocks of D1
    predicted = {"predicted_all": {"cooking": 0.7, "history": 0.3},
                 "predicted_autoscale": {"cooking": 0.6, "history": 0.4},
                 "smallest": {"cooking": 0.5, "history": 0.5}}  # fmt: skip
    for name in ladder.all_names(list(BLOCKS)):
        spec, tokens = cell_plan(ladder, name, BLOCKS, "cooking", 0.3, predicted)
        assert check_schedule(spec, list(BLOCKS), "cooking") is None, name
        scale, run = split_name(name)
        if "-x" in run:  # a perturbation: the domain's amount scaled, the others fixed
            domain, level = run.split("-x")
            base = ladder.scale(scale).tokens
            assert tokens == round(base * (1 + (float(level) - 1) * natural[domain]))
            shares = spec["phases"][0]["shares"]
            assert shares[domain] * tokens == pytest.approx(
                float(level) * natural[domain] * base, rel=1e-3
            )
        elif scale == "target":
            assert tokens == 16384
            if run in predicted:
                assert spec["phases"][0]["shares"] == pytest.approx(predicted[run])
        else:
            assert tokens == ladder.scale(scale).tokens
        budget = BudgetSpec("fixed_tokens", tokens // 32)
        _names, order = build_order(BLOCKS, "cooking", 0.3, name, spec, 0, budget)
        assert len(order.domains) == tokens // 32


@pytest.mark.parametrize(("window", "factor"), [(0.05, 2.0), (0.2, 4.0), (0.4, 2.0), (0.2, 1.0)])
def test_an_ordering_run_moves_d1_late_and_holds_its_total(window: float, factor: float) -> None:
    spec = {"family": "end_window", "window": window, "d1_factor": factor, "hold_total": True}
    budget = BudgetSpec("fixed_tokens", 4000)
    names, order = build_order(BLOCKS, "cooking", 0.3, "w", spec, 0, budget)
    d1 = order.domains == names.index("cooking")
    natural = 270 / 1170
    assert d1.mean() == pytest.approx(natural, abs=2e-3)  # the total is the natural share
    late = d1[-round(window * 4000) :].mean()
    assert late == pytest.approx(min(1.0, factor * natural), abs=0.03)  # factor x in the window


def test_hold_total_refuses_a_window_d1_cannot_fill() -> None:
    spec = {"family": "end_window", "window": 0.5, "d1_share": 0.9, "hold_total": True}
    with pytest.raises(ValueError, match=r"'hold_total'.*natural share"):
        build_order(BLOCKS, "cooking", 0.3, "w", spec, 0, BudgetSpec("fixed_tokens", 4000))


@pytest.mark.parametrize(
    ("ladder", "key", "says"),
    [
        ({"scales": [SCALES[1], SCALES[0], SCALES[2]]}, "ladder.scales", "must increase"),
        ({"target": {"tokens": 8192}}, "ladder.target.tokens", "must exceed"),
        ({"levels": [0.5, 0.8, 2, 3, 4]}, "ladder.levels", "with 1"),
        (
            {"order": {"windows": [0.1, 0.2, 0.3, 0.4, 0.5], "window": 0.2, "factor": 3}},
            "ladder.order",
            "at most 1",
        ),
        ({"order": {"window": 0.25}}, "ladder.order.window", "one of order.windows"),
        ({"ratio": 0.2}, "ladder.ratio", "not one of grid.ratios"),
        ({"ratio": None}, "ladder.ratio", "name the one to use"),
        ({"arm": "fast"}, "ladder.arm", "not one of grid.lr_arms"),
        ({"scales": SCALES[:2]}, "ladder.scales", "too short"),
        ({"target": {"tokens": 16384, "preset": "huge"}}, "ladder.target.preset", "unknown preset"),
        ({"max_epochs": 0}, "ladder.max_epochs", "less than or equal to the minimum"),
        (
            {"scales": [*SCALES[:2], {"tokens": 8192, "preset": "nano"}]},
            "ladder.scales[2].preset",
            "unknown preset",
        ),
    ],
)
def test_a_bad_ladder_is_one_line_naming_the_key(ladder: dict, key: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says) as error:
        load_study(ladder_config(**ladder), SCHEMA)
    assert f"'{key}'" in str(error.value) and "\n" not in str(error.value)


def test_ladder_names_are_reserved() -> None:
    config = ladder_config()
    config["grid"]["schedules"]["ladder_mine"] = {"family": "shuffled"}
    with pytest.raises(ConfigError, match=r"grid\.schedules\.ladder_mine.*ladder's"):
        load_study(config, SCHEMA)


def test_natural_weights_follow_the_ratio() -> None:
    low, high = (natural_weights(BLOCKS, "cooking", r)["cooking"] for r in (0.1, 0.3))
    assert low < high and np.isclose(low, 90 / 990)


def test_a_factor_the_data_cannot_fill_names_the_key_when_its_stream_is_built() -> None:
    ladder = load_study(ladder_config(), SCHEMA).ladder
    blocks = {"cooking": 5000, "history": 900}  # ratio 0.3: D1's natural share is 0.23
    cell_plan(ladder, "ladder_s1_order-w0.2-f4", blocks, "cooking", 0.3)  # 0.92 of the window
    with pytest.raises(ConfigError, match=r"'ladder.order.factors'.*at most 2.00") as error:
        cell_plan(ladder, "ladder_s1_order-w0.2-f4", blocks, "cooking", 1.0)  # 2.0 of it
    assert "\n" not in str(error.value)


def test_a_cell_that_would_repeat_data_is_refused_in_one_line_naming_it_and_the_way_out() -> None:
    """max_epochs defaults to 1, and every ladder stream checks every fixed cell, so the first
    one built (here s1's base) already refuses, naming the cell that needs the most."""
    ladder = load_study(ladder_config(), SCHEMA).ladder
    assert ladder.max_epochs == 1.0 and ladder.seq_len == 32
    # 300 history blocks: D1's pool at ratio 0.3 is 90; uniform weights at the target (16384
    # tokens, 512 blocks of 32) take 256 of them, and s3's history-x3 run 590 of history's 300
    small = {"cooking": 300, "history": 300}
    epochs = cell_epochs(ladder, "ladder_target_uniform", small, "cooking", 0.3)
    assert epochs["cooking"] == pytest.approx(256 / 90)
    assert cell_epochs(ladder, "ladder_s3_history-x3", small, "cooking", 0.3)[
        "history"
    ] == pytest.approx(590 / 300, abs=2 / 300)
    with pytest.raises(ConfigError, match=r"'ladder.max_epochs'") as error:
        cell_plan(ladder, "ladder_s1_base", small, "cooking", 0.3)
    said = str(error.value)
    assert "\n" not in said and "ladder cell ladder_target_uniform" in said
    assert "2.84 epochs of cooking" in said and "more cell-domain pairs" in said
    assert "domains.cooking.max_docs" in said and "ladder.target.tokens" in said
    # enough data for the default levels, but not for a domain six times its base amount
    enough = {"cooking": 1000, "history": 900}  # pools of 270 and 900 blocks
    wide = load_study(ladder_config(levels=[0.2, 0.5, 1, 3, 6]), SCHEMA).ladder
    cell_plan(ladder, "ladder_s1_base", enough, "cooking", 0.3)
    with pytest.raises(ConfigError, match=r"cell ladder_s3_\w+-x6 .* 1\.31 epochs") as error:
        cell_plan(wide, "ladder_s1_base", enough, "cooking", 0.3)
    assert "ladder.levels" in str(error.value)
    # a predicted mixture is not refused: it is trained as predicted, and the tables flag it
    predicted = {"predicted_all": {"cooking": 0.9, "history": 0.1}}
    cell_plan(ladder, "ladder_target_predicted_all", enough, "cooking", 0.3, predicted)
    over = cell_epochs(ladder, "ladder_target_predicted_all", enough, "cooking", 0.3, predicted)
    assert over["cooking"] == pytest.approx(0.9 * 512 / 270, abs=1 / 270)
    free = load_study(ladder_config(max_epochs=None), SCHEMA).ladder
    assert free.max_epochs is None
    cell_plan(free, "ladder_s3_history-x3", small, "cooking", 0.3)


def test_a_cell_s_epochs_are_what_its_stream_takes() -> None:
    """Every cell's epochs (blocks over its pool) against the stream the real builder makes."""
    ladder = load_study(ladder_config(), SCHEMA).ladder
    blocks = {"cooking": 3000, "history": 2000}
    pool = pool_blocks(blocks, "cooking", 0.3)
    predicted = {m: {"cooking": 0.3, "history": 0.7} for m in (*CHECK[:2], "smallest")}
    for name in ladder.all_names(list(blocks)):
        spec, tokens = cell_plan(ladder, name, blocks, "cooking", 0.3, predicted)
        budget = BudgetSpec("fixed_tokens", tokens // 32)
        names, order = build_order(blocks, "cooking", 0.3, name, spec, 0, budget)
        taken = {d: int((order.domains == names.index(d)).sum()) / pool[d] for d in blocks}
        epochs = cell_epochs(ladder, name, blocks, "cooking", 0.3, predicted)
        assert epochs == pytest.approx(taken, abs=3 / min(pool.values())), name
