"""Target-aware selection in the real workflow: the embeddings, every selection as a derived
domain with shards of its own (the random set one per training seed), cells that train on it in
the pool's place, the comparisons and the report's section in one snakemake run; the same
selection from the same inputs; nothing to do when the study is run again."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from curriculab.io import read_json
from curriculab.streams.stream_file import read_stream
from tests.support.helpers import TINY_CONFIG
from tests.support.report_page import visible_text
from tests.support.workflow import jobs_run, remade_same_bytes, run_study

SETS = {"rand": "random", "near": "similarity", "ot": "ot"}
SEEDS = [0, 1, 2]
# Derived domain -> set: the random set is drawn anew for every training seed.
DERIVED = {"history_near": "near", "history_ot": "ot"} | {
    f"history_rand_seed{seed}": "rand" for seed in SEEDS
}


def _config() -> dict:
    config = copy.deepcopy(TINY_CONFIG)
    config["grid"]["ratios"] = [0.3]
    config["grid"]["seeds"] = SEEDS
    config["grid"]["schedules"] = {
        "shuffled": {"family": "shuffled"},  # the whole pool: a placement's partner
        "spread": {"family": "shuffled", "sweep": {"select": list(SETS)}},
        "late": {"family": "placement", "a": 8, "b": 1, "sweep": {"select": list(SETS)}},
    }
    config["analysis"] = {"baseline": "spread-selectrand"}
    config["selection"] = {
        "pool": "history",
        "embedding": {"type": "tfidf", "dims": 8},
        "ot": {"target_points": 40},
        "sets": {name: {"method": method, "tokens": 1500} for name, method in SETS.items()},
    }
    config["resources"] = {"train": {"cells_per_job": 11}}
    return config


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> tuple[Path, str]:
    return run_study(tmp_path_factory, "selection", _config())


def test_selections_are_domains_with_their_own_train_and_the_pools_test(study) -> None:
    workdir, printout = study
    jobs = jobs_run(printout)
    assert jobs["selection_embed"] == 1 and jobs["selection"] == len(DERIVED)
    assert jobs["selection_summary"] == 1
    pool = read_json(workdir / "results/shards/history/manifest.json")
    for name in DERIVED:
        manifest = read_json(workdir / f"results/shards/{name}/manifest.json")
        record = read_json(workdir / f"results/selection/{name}/selection.json")
        # Equal-sized sets (tokens, rounded up to a whole document): the test split untouched.
        assert 1500 <= record["chosen_tokens"] < 1500 + 400
        assert manifest["splits"]["train"]["n_blocks"] < pool["splits"]["train"]["n_blocks"]
        assert manifest["splits"]["test"]["sha256"] == pool["splits"]["test"]["sha256"]
        scores = pl.read_parquet(workdir / f"results/selection/{name}/scores.parquet")
        assert scores["chosen"].sum() == record["chosen_docs"]
        assert sorted(scores["rank"].to_list()) == list(range(scores.height))


def test_a_cell_trains_on_its_selection_in_the_pools_place(study) -> None:
    workdir, _ = study
    derived = read_json(workdir / "results/shards/history_ot/manifest.json")
    names, domains, blocks = read_stream(workdir / "results/streams/0.3/late-selectot/seed1.arrow")
    assert names == ["cooking", "history"]  # the pool's name: evaluation and tables unchanged
    history = blocks[domains == names.index("history")]
    assert len(history) == derived["splits"]["train"]["n_blocks"]  # fixed_data: each once
    evaluation = read_json(workdir / "results/training/0.3/late-selectot/cosine/seed1/eval.json")
    whole = read_json(workdir / "results/training/0.3/shuffled/cosine/seed1/eval.json")
    assert set(evaluation["domains"]) == set(whole["domains"]) == {"cooking", "history"}
    trained = evaluation["reference"]["training_tokens"]
    assert trained < whole["reference"]["training_tokens"]  # a part of the pool


def test_every_seed_trains_on_its_own_random_draw(study) -> None:
    workdir, _ = study
    chosen = []
    for seed in SEEDS:
        draw = read_json(workdir / f"results/shards/history_rand_seed{seed}/manifest.json")
        names, domains, _ = read_stream(
            workdir / f"results/streams/0.3/late-selectrand/seed{seed}.arrow"
        )
        history = (domains == names.index("history")).sum()
        assert history == draw["splits"]["train"]["n_blocks"]  # its own draw, each block once
        scores = pl.read_parquet(
            workdir / f"results/selection/history_rand_seed{seed}/scores.parquet"
        )
        chosen.append(frozenset(scores.filter(pl.col("chosen"))["doc_id"]))
    assert len(set(chosen)) == len(SEEDS)  # three different subsets


def test_the_comparisons_and_the_report_section(study) -> None:
    workdir, _ = study
    summary = read_json(workdir / "results/selection/summary.json")
    assert sorted(r["set"] for r in summary["records"]) == sorted(DERIVED.values())
    assert summary["draws"] == {"rand": SEEDS}
    rand = [m for m in summary["means"] if m["set"] == "rand"]
    assert rand and all(m["draws"] == len(SEEDS) and m["sd"] > 0 for m in rand)
    kinds = {t["kind"] for t in summary["tests"]}
    assert all(0 < m["pool_loss"] < 20 for m in summary["means"])  # the pool's own test loss
    assert kinds == {"vs random", "placement", "interaction"}
    assert {(m["set"], m["placement"]) for m in summary["means"]} >= {
        ("ot", "shuffled"),
        ("ot", "late"),
        ("whole pool", "shuffled"),
    }
    chosen = {
        name: set(
            pl.read_parquet(workdir / f"results/selection/{name}/scores.parquet")
            .filter(pl.col("chosen"))["doc_id"]
            .to_list()
        )
        for name in DERIVED
    }
    for pair in summary["overlaps"]:  # every pair of draws of the pair's own sets
        found = [
            len(chosen[x] & chosen[y]) / len(chosen[x] | chosen[y])
            for i, x in enumerate(DERIVED)
            for y in list(DERIVED)[i + 1 :]
            if {DERIVED[x], DERIVED[y]} == {pair["a"], pair["b"]}
        ]
        assert pair["pairs"] == len(found)
        assert pair["jaccard"] == pytest.approx(np.mean(found))
        assert pair["jaccard_min"] == pytest.approx(min(found))
    csv = pl.read_csv(workdir / "results/selection/summary.csv")
    assert csv.height == len(summary["tests"]) and csv["p_holm"].is_not_null().all()
    text = visible_text((workdir / "reports/report.html").read_text())
    assert "Selection: which pool data to train on, and where it goes" in text
    assert "GOT-D" in text and "ot minus rand at late" in text
    page = (workdir / "reports/report.html").read_text()
    assert '"chart-selection"' in page.split("const CHART_SPECS")[1]
    # The selection cells stay in the grid (they are schedules like any other).
    grid = pl.read_parquet(workdir / "results/analysis/cells.parquet")
    assert "late-selectot" in set(grid["schedule"])


def test_a_selection_remade_from_the_same_inputs_is_the_same_bytes(study, tmp_path) -> None:
    workdir, _ = study
    remade_same_bytes(workdir, tmp_path / "copy", "results/selection/history_ot/docs.parquet")
    record = json.loads((workdir / "results/selection/history_ot/selection.json").read_text())
    assert record["solver"]["converged"]
