"""The design loop's plan, its config checks, feasible proposals and its statistics
(curriculab.design.plan, loop): no training."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest

from curriculab.config import ConfigError, load_study
from curriculab.design.loop import (
    allowed_points,
    observations,
    propose_round,
    recommendation,
    seed_noise,
)
from curriculab.design.plan import Design, cells_read, round_of
from curriculab.design.surrogate import Box, propose
from curriculab.streams.build import target_blocks_wanted
from curriculab.streams.schedules import BudgetSpec
from tests.support.design import WINDOW, design_config
from tests.support.helpers import SCHEMA


def test_rounds_have_fixed_sizes_names_and_roles() -> None:
    design = load_study(design_config(initial=3, rounds=2, per_round=2), SCHEMA).design
    assert [design.size(r) for r in range(design.final_round + 1)] == [3, 2, 2, 1]
    assert design.all_names[:4] == ["design_r0_0", "design_r0_1", "design_r0_2", "design_r1_0"]
    assert [round_of(n) for n in design.all_names] == [0, 0, 0, 1, 1, 2, 2, 3]
    assert round_of("win") is None
    assert design.role(1, 0) == "predicted optimum" and design.role(1, 1) == "expected improvement"
    assert design.role(3, 0) == "recommended"
    assert Design.of(design.params()) == design  # through a rule's params and back


def test_grid_schedules_inside_the_box_are_free_observations_and_rounds_read_earlier_ones() -> None:
    study = load_study(design_config(initial=2, rounds=1, per_round=2), SCHEMA)
    design = study.design
    assert design.point_of(study.schedules["win_long"]) == {"window": 0.4, "d1_share": 0.3}
    assert design.point_of(study.schedules["win_out"]) is None  # window 0.9 is outside
    assert design.point_of(study.schedules["late"]) is None  # another family
    assert design.point_of({**WINDOW, "remove": "history"}) is None  # another fixed parameter
    assert cells_read(study, 0) == []  # round 0 is a Sobol design: it reads nothing
    read = {(c["schedule"], c["seed"]) for c in cells_read(study, 2)}
    expected = {"win", "win_long", "design_r0_0", "design_r0_1", "design_r1_0", "design_r1_1"}
    assert read == {(s, seed) for s in expected for seed in (0, 1)}
    summary = {c["schedule"] for c in cells_read(study, None)}
    assert summary == expected | {"design_r2_0", "shuffled"}  # the baseline for the pairing
    assert {(c["ratio"], c["arm"]) for c in cells_read(study, None)} == {("0.3", "cosine")}


@pytest.mark.parametrize(
    ("design", "key", "says"),
    [
        ({"schedule": "nope"}, "design.schedule", "not one of the schedules"),
        ({"parameters": {"order": [0, 1]}}, "design.parameters.order", "no numeric parameter"),
        ({"parameters": {"window": [0.5, 0.1]}}, "design.parameters.window", "low < high"),
        ({"ratio": 0.2}, "design.ratio", "not one of grid.ratios"),
        ({"ratio": None}, "design.ratio", "name the one to use"),
        ({"arm": "fast"}, "design.arm", "not one of grid.lr_arms"),
        ({"rounds": 0}, "design.rounds", "minimum"),
    ],
)
def test_a_bad_design_is_one_line_naming_the_key(design: dict, key: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says) as error:
        load_study(design_config(**design), SCHEMA)
    assert f"'{key}'" in str(error.value) and "\n" not in str(error.value)


def test_design_names_are_reserved() -> None:
    config = design_config()
    config["grid"]["schedules"]["design_r0_0"] = {"family": "shuffled"}
    with pytest.raises(ConfigError, match=r"grid\.schedules\.design_r0_0.*design loop's"):
        load_study(config, SCHEMA)


TRAIN_BLOCKS = {"cooking": 400, "history": 1000}


def natural_share(ratio: float) -> float:
    d1 = target_blocks_wanted(TRAIN_BLOCKS, "cooking", ratio)
    return d1 / (d1 + TRAIN_BLOCKS["history"])


def test_points_the_budget_cannot_fill_are_never_proposed() -> None:
    """Under fixed_data, an end window holds window x d1_share of the run as D1, at most all
    of D1 (its natural share): the feasible region is that hyperbola, and every point of
    round 0 and of a surrogate round lies inside it."""
    design = load_study(design_config(initial=6, per_round=4), SCHEMA).design
    allowed = allowed_points(design, TRAIN_BLOCKS, "cooking", 0.3, BudgetSpec())
    box = Box.of(design.bounds)
    grid = box.scale(np.random.default_rng(0).random((400, 2)))
    natural = natural_share(0.3)
    inside = grid[:, 0] * grid[:, 1] <= natural  # bounds order: window, d1_share
    mask = allowed(grid)
    clear = np.abs(grid[:, 0] * grid[:, 1] - natural) > 0.01  # away from the rounding edge
    assert np.array_equal(mask[clear], inside[clear]) and 0.1 < inside.mean() < 0.9
    first = propose_round(design, 0, None, allowed)
    assert [p["schedule"] for p in first] == design.names(0)
    rng = np.random.default_rng(1)
    x = np.array([[p["point"]["window"], p["point"]["d1_share"]] for p in first])
    y = 3.0 - x[:, 0] * x[:, 1] + rng.normal(0, 0.01, len(x))
    obs = pl.DataFrame({"window": x[:, 0], "d1_share": x[:, 1], "objective": y})
    proposals = propose_round(design, 1, obs, allowed)
    assert len(proposals) == 4 and proposals == propose_round(design, 1, obs, allowed)
    for p in first + proposals:
        assert p["point"]["window"] * p["point"]["d1_share"] <= natural + 1e-3, p
        assert p["spec"] == {**WINDOW, **p["point"]}
    assert all(p["predicted"]["sd"] > 0 for p in proposals)


def test_propose_keeps_to_what_allowed_keeps() -> None:
    box = Box.of({"a": (0.0, 1.0), "b": (0.0, 1.0)})
    x = np.array([[0.1, 0.1], [0.2, 0.6], [0.6, 0.2], [0.3, 0.3]])
    y = ((x - 0.8) ** 2).sum(axis=1)  # the optimum (0.8, 0.8) is outside a + b <= 1
    points = propose(box, x, y, 4, seed=3, allowed=lambda p: p.sum(axis=1) <= 1.0)
    assert len(points) == 4 and np.all(points.sum(axis=1) <= 1.0)


def cells_table(values: dict[str, list[float]], first_seed: int = 0) -> pl.DataFrame:
    rows = [
        {"ratio": "0.3", "arm": "cosine", "schedule": s, "seed": first_seed + i, "objective": v}
        for s, vs in values.items()
        for i, v in enumerate(vs)
    ]
    return pl.DataFrame(rows).with_columns(ratio_value=pl.lit(0.3))


def three_seeds(**design: Any) -> Any:
    """A study of seeds 0, 1, 2 (its fresh seeds: 3, 4, 5 by default)."""
    config = design_config(**design)
    config["grid"]["seeds"] = [0, 1, 2]
    return load_study(config, SCHEMA)


def test_observations_and_the_recommendation_match_an_independent_computation() -> None:
    study = three_seeds(initial=2, rounds=1, per_round=1)
    design = study.design
    assert design.fresh_seeds == (3, 4, 5)
    values = {
        "win": [3.0, 3.2, 3.1],
        "design_r2_0": [2.8, 3.1, 2.95],
        "shuffled": [3.3, 3.4, 3.2],
        "late": [1.0, 1.0, 1.0],  # not in the design: ignored
    }
    point = {"window": 0.3, "d1_share": 0.25}
    specs = dict(study.schedules) | {"design_r2_0": design.spec_at(point)}
    fresh = {"design_r2_0": [3.05, 3.2, 3.1], "shuffled": [3.25, 3.3, 3.3]}  # seeds 3, 4, 5
    cells = pl.concat([cells_table(values), cells_table(fresh, first_seed=3)])
    obs = observations(cells, design, specs)  # the design's seeds only
    assert obs["schedule"].to_list() == ["win", "design_r2_0"]  # grid first (round -1)
    row = obs.row(1, named=True)
    v = np.array(values["design_r2_0"])
    half = 4.302652729911275 * v.std(ddof=1) / np.sqrt(3)  # t(0.975, 2 df)
    assert row["objective"] == pytest.approx(v.mean())
    assert row["ci_high"] - row["objective"] == pytest.approx(half)
    proposal = {"schedule": "design_r2_0", "point": point, "spec": specs["design_r2_0"],
                "predicted": {"mean": 3.0, "sd": 0.1}}  # fmt: skip
    rec = recommendation(design, obs, proposal, cells, "shuffled")
    d = v - np.array(values["shuffled"])
    assert rec["versus_baseline"]["mean"] == pytest.approx(d.mean())
    assert rec["versus_baseline"]["ci_low"] == pytest.approx(
        d.mean() - 4.302652729911275 * d.std(ddof=1) / np.sqrt(3)
    )
    assert rec["best_grid"] == "win"
    assert rec["versus_best_grid"]["mean"] == pytest.approx((v - np.array(values["win"])).mean())
    f = np.array(fresh["design_r2_0"])  # the fresh seeds: their own mean and pairing
    assert rec["fresh"]["mean"] == pytest.approx(f.mean()) and rec["fresh"]["seeds"] == 3
    assert rec["fresh"]["ci_high"] - f.mean() == pytest.approx(
        4.302652729911275 * f.std(ddof=1) / np.sqrt(3)
    )
    fd = f - np.array(fresh["shuffled"])
    assert rec["fresh_versus_baseline"]["mean"] == pytest.approx(fd.mean())
    assert rec["fresh_versus_baseline"]["ci_low"] == pytest.approx(
        fd.mean() - 4.302652729911275 * fd.std(ddof=1) / np.sqrt(3)
    )
    with pytest.raises(ValueError, match="different numbers of seeds"):
        observations(cells.filter(~((pl.col("schedule") == "win") & (pl.col("seed") == 2))),
                     design, specs)  # fmt: skip


def test_seed_noise_recovers_the_interaction_variance_and_ignores_seed_offsets() -> None:
    """y[p, s] = f(p) + b(s) + e(p, s): the noise of a seed mean that pairing leaves is
    var(e) / seeds, however large the seeds' shared offsets b(s) are."""
    design = three_seeds().design
    rng = np.random.default_rng(5)
    points, seeds, sd = 60, 3, 0.05
    estimates = []
    for _ in range(40):
        f = rng.normal(3.0, 0.3, points)[:, None]
        b = rng.normal(0.0, 1.0, seeds)[None, :]  # offsets 20x the noise
        y = f + b + rng.normal(0.0, sd, (points, seeds))
        values = {f"p{i}": list(row) for i, row in enumerate(y)}
        estimates.append(seed_noise(cells_table(values), design, list(values)))
    assert np.mean(estimates) == pytest.approx(sd**2 / seeds, rel=0.05)
    assert seed_noise(cells_table({"p0": [1.0, 2.0]}), design, ["p0"]) is None  # one point
    values = {"p0": [1.0, 1.1, 0.9], "p1": [2.0, 2.2, 1.9]}
    alone = seed_noise(cells_table(values), design, list(values))
    fresh = cells_table({"p0": [9.0, -9.0, 5.0]}, first_seed=3)  # the recommendation's, say
    assert seed_noise(pl.concat([cells_table(values), fresh]), design, list(values)) == alone
