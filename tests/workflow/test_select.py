"""Target-aware selection in the real workflow: the embeddings, every selection as a derived
domain with shards of its own, cells that train on it in the pool's place, the comparisons and
the report's section in one snakemake run; the same selection from the same inputs; nothing
to do when the study is run again."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import polars as pl
import pytest

from curriculab.io import read_json
from curriculab.streams.stream_file import read_stream
from tests.helpers import TINY_CONFIG
from tests.report_page import visible_text
from tests.workflow.test_trunks import _jobs_run
from tests.workflow.test_workflow import _remade_same_bytes, _run_study

SETS = {"rand": "random", "near": "similarity", "ot": "ot"}


def _config() -> dict:
    config = copy.deepcopy(TINY_CONFIG)
    config["grid"]["ratios"] = [0.3]
    config["grid"]["seeds"] = [0, 1, 2]
    config["grid"]["schedules"] = {
        "shuffled": {"family": "shuffled"},  # the whole pool: a placement's partner
        "spread": {"family": "shuffled", "sweep": {"select": list(SETS)}},
        "late": {"family": "placement", "a": 8, "b": 1, "sweep": {"select": list(SETS)}},
    }
    config["analysis"] = {"baseline": "spread-selectrand"}
    config["select"] = {
        "pool": "history",
        "embedding": {"type": "tfidf", "dims": 8},
        "ot": {"target_points": 40},
        "sets": {name: {"method": method, "tokens": 1500} for name, method in SETS.items()},
    }
    config["resources"] = {"train": {"cells_per_job": 11}}
    return config


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> tuple[Path, str]:
    return _run_study(tmp_path_factory, "select", _config())


def test_selections_are_domains_with_their_own_train_and_the_pools_test(study) -> None:
    workdir, printout = study
    jobs = _jobs_run(printout)
    assert jobs["select_embed"] == 1 and jobs["select"] == 3 and jobs["select_summary"] == 1
    pool = read_json(workdir / "results/shards/history/manifest.json")
    for name in SETS:
        manifest = read_json(workdir / f"results/shards/history_{name}/manifest.json")
        record = read_json(workdir / f"results/select/history_{name}/selection.json")
        # Equal-sized sets (tokens, rounded up to a whole document): the test split untouched.
        assert 1500 <= record["chosen_tokens"] < 1500 + 400
        assert manifest["splits"]["train"]["n_blocks"] < pool["splits"]["train"]["n_blocks"]
        assert manifest["splits"]["test"]["sha256"] == pool["splits"]["test"]["sha256"]
        scores = pl.read_parquet(workdir / f"results/select/history_{name}/scores.parquet")
        assert scores["chosen"].sum() == record["chosen_docs"]
        assert sorted(scores["rank"].to_list()) == list(range(scores.height))


def test_a_cell_trains_on_its_selection_in_the_pools_place(study) -> None:
    workdir, _ = study
    derived = read_json(workdir / "results/shards/history_ot/manifest.json")
    names, domains, blocks = read_stream(workdir / "results/streams/0.3/late-selectot/seed1.arrow")
    assert names == ["cooking", "history"]  # the pool's name: evaluation and tables unchanged
    history = blocks[domains == names.index("history")]
    assert len(history) == derived["splits"]["train"]["n_blocks"]  # fixed_data: each once
    evaluation = read_json(workdir / "results/runs/0.3/late-selectot/cosine/seed1/eval.json")
    whole = read_json(workdir / "results/runs/0.3/shuffled/cosine/seed1/eval.json")
    assert set(evaluation["domains"]) == set(whole["domains"]) == {"cooking", "history"}
    trained = evaluation["reference"]["training_tokens"]
    assert trained < whole["reference"]["training_tokens"]  # a part of the pool


def test_the_comparisons_and_the_report_section(study) -> None:
    workdir, _ = study
    summary = read_json(workdir / "results/select/summary.json")
    assert {r["set"] for r in summary["records"]} == set(SETS)
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
            pl.read_parquet(workdir / f"results/select/history_{name}/scores.parquet")
            .filter(pl.col("chosen"))["doc_id"]
            .to_list()
        )
        for name in SETS
    }
    for pair in summary["overlaps"]:  # each pair's own sets, whatever order the inputs come in
        a, b = chosen[pair["a"]], chosen[pair["b"]]
        assert pair["jaccard"] == pytest.approx(len(a & b) / len(a | b))
    csv = pl.read_csv(workdir / "results/tables/select.csv")
    assert csv.height == len(summary["tests"]) and csv["p_holm"].is_not_null().all()
    text = visible_text((workdir / "reports/report.html").read_text())
    assert "Selection: which pool data to train on, and where it goes" in text
    assert "GOT-D" in text and "ot minus rand at late" in text
    page = (workdir / "reports/report.html").read_text()
    assert '"chart-selection"' in page.split("const CHART_SPECS")[1]
    # The selection cells stay in the grid (they are schedules like any other).
    grid = pl.read_parquet(workdir / "results/tables/cells.parquet")
    assert "late-selectot" in set(grid["schedule"])


def test_a_selection_remade_from_the_same_inputs_is_the_same_bytes(study, tmp_path) -> None:
    workdir, _ = study
    _remade_same_bytes(workdir, tmp_path / "copy", "results/select/history_ot/docs.parquet")
    record = json.loads((workdir / "results/select/history_ot/selection.json").read_text())
    assert record["solver"]["converged"]
