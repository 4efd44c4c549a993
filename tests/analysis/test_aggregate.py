"""Tests for aggregation: fake run directories in, tidy cells/curves/summary tables out."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats as scipy_stats

from curriculab.analysis.aggregate import collect_cells, collect_streams, summarise, write_tables
from tests.support.runs import TARGET, fake_losses, make_runs, write_run


def test_cells_hold_what_the_runs_wrote(tmp_path: Path) -> None:
    domains = [TARGET, "web"]
    runs = make_runs(tmp_path, domains)
    cells = collect_cells(runs, TARGET)["cells"]
    assert cells.height == len(runs)
    expected_order = sorted((float(r), s, arm, seed) for r, s, arm, seed, _ in runs)
    assert list(cells.select("ratio_value", "schedule", "arm", "seed").iter_rows()) == (
        expected_order
    )
    assert cells.schema["ratio"] == pl.String and cells.schema["seed"] == pl.Int64
    for row in cells.iter_rows(named=True):
        written = fake_losses(row["ratio"], row["schedule"], row["seed"], domains)
        assert row["ratio_value"] == float(row["ratio"])
        assert row["d1_test_loss"] == written[TARGET]["loss"]
        assert row["d2_test_loss"] == written["web"]["loss"]
        assert row["d1_bits_per_byte"] == written[TARGET]["bits_per_byte"]
        assert row["d2_bits_per_byte"] == written["web"]["bits_per_byte"]
        assert row["d1_unigram_loss"] == written[TARGET]["unigram_loss"]
        for name in domains:
            assert row[f"test_loss_{name}"] == written[name]["loss"]
            assert row[f"bits_per_byte_{name}"] == written[name]["bits_per_byte"]
            assert row[f"unigram_loss_{name}"] == written[name]["unigram_loss"]
        assert row["steps"] == row["seed"] + 10
        assert row["wall_seconds"] == 3.25 * (row["seed"] + 1)
    assert "device" not in cells.columns and "unknown_key" not in cells.columns


def test_d2_is_token_weighted_mean_of_other_domains(tmp_path: Path) -> None:
    domains = ["web", TARGET, "books"]
    runs = make_runs(tmp_path, domains, seeds=(3,))
    cells = collect_cells(runs, TARGET)["cells"]
    for row in cells.iter_rows(named=True):
        written = fake_losses(row["ratio"], row["schedule"], row["seed"], domains)
        others = [written["web"], written["books"]]
        weights = [d["n_tokens"] for d in others]
        for field, column in (("loss", "d2_test_loss"), ("bits_per_byte", "d2_bits_per_byte")):
            expected = np.average([d[field] for d in others], weights=weights)
            assert row[column] == pytest.approx(expected, rel=1e-12)
        assert row["d1_test_loss"] == written[TARGET]["loss"]


def test_curves_are_stacked_with_cell_identity(tmp_path: Path) -> None:
    domains = [TARGET, "web", "books"]
    runs = make_runs(tmp_path, domains, seeds=(0, 1))
    curves = collect_cells(runs, TARGET)["curves"]
    per_run = [pl.read_parquet(run_dir / "curve.parquet") for *_, run_dir in runs]
    assert curves.height == sum(curve.height for curve in per_run)
    assert curves.get_column("is_target").to_list() == [
        d == TARGET for d in curves.get_column("domain")
    ]
    ratio, schedule, arm, seed, run_dir = runs[0]
    own = curves.filter(
        pl.col("ratio") == ratio,
        pl.col("schedule") == schedule,
        pl.col("arm") == arm,
        pl.col("seed") == seed,
    )
    assert own.select("step", "tokens_seen", "domain", "loss", "bits_per_byte").equals(
        pl.read_parquet(run_dir / "curve.parquet")
    )
    assert own.get_column("ratio_value").unique().to_list() == [float(ratio)]
    written = fake_losses(ratio, schedule, seed, domains)
    for domain, n_tokens, reference in own.select("domain", "n_tokens", "unigram_loss").iter_rows():
        assert n_tokens == written[domain]["n_tokens"]
        assert reference == written[domain]["unigram_curve_loss"]


def test_exposure_and_learning_rate_profile_per_cell(tmp_path: Path) -> None:
    runs = make_runs(tmp_path, [TARGET, "web"], seeds=(0, 1))
    collected = collect_cells(runs, TARGET)
    exposure, profile = collected["exposure"], collected["lr_profile"]
    assert exposure.height == 2 * len(runs) and profile.height == 4 * len(runs)
    row = exposure.filter(pl.col("arm") == "wsd", pl.col("seed") == 1, pl.col("domain") == "web")
    assert row["lr_weighted_share"].to_list() == [0.8] * 10  # 5 ratios x 2 schedules
    assert row["mean_lr"].to_list() == [0.002] * 10
    assert profile["progress"].unique().sort().to_list() == [0.0, 0.25, 0.5, 0.75]


def test_curve_domain_missing_from_eval_is_refused(tmp_path: Path) -> None:
    runs = make_runs(tmp_path, [TARGET, "web"], seeds=(0,))
    path = runs[0][-1] / "curve.parquet"
    pl.read_parquet(path).with_columns(pl.lit("mystery").alias("domain")).write_parquet(path)
    with pytest.raises(ValueError, match="mystery") as error:
        collect_cells(runs, TARGET)
    assert str(path) in str(error.value)


def test_summarise_matches_numpy_and_statistics(tmp_path: Path) -> None:
    runs = make_runs(tmp_path, [TARGET, "web"])
    cells = collect_cells(runs, TARGET)["cells"]
    summary = summarise(cells)
    groups = {(r, s, arm) for r, s, arm, *_ in runs}
    assert summary.height == len(groups)
    assert summary.get_column("ratio_value").to_list() == sorted(
        summary.get_column("ratio_value").to_list()
    )
    for row in summary.iter_rows(named=True):
        group = cells.filter(
            pl.col("ratio") == row["ratio"],
            pl.col("schedule") == row["schedule"],
            pl.col("arm") == row["arm"],
        )
        assert row["n_seeds"] == group.height
        for column in ("d1_test_loss", "d2_test_loss"):
            values = group.get_column(column).to_list()
            assert row[f"{column}_mean"] == pytest.approx(float(np.mean(values)), rel=1e-12)
            assert row[f"{column}_std"] == pytest.approx(statistics.stdev(values), rel=1e-9)
            low, high = scipy_stats.t.interval(
                0.95, len(values) - 1, loc=np.mean(values), scale=scipy_stats.sem(values)
            )
            assert (row[f"{column}_ci_low"], row[f"{column}_ci_high"]) == pytest.approx((low, high))


def test_summarise_std_is_null_for_one_seed(tmp_path: Path) -> None:
    cells = collect_cells(make_runs(tmp_path, [TARGET, "web"], seeds=(4,)), TARGET)["cells"]
    summary = summarise(cells)
    assert summary.get_column("n_seeds").to_list() == [1] * summary.height
    assert summary.get_column("d1_test_loss_std").null_count() == summary.height
    assert summary.get_column("d1_test_loss_mean").to_list() == [
        cells.filter(pl.col("ratio") == r, pl.col("schedule") == s, pl.col("arm") == a)[
            "d1_test_loss"
        ][0]
        for r, s, a in summary.select("ratio", "schedule", "arm").iter_rows()
    ]


@pytest.mark.parametrize("name", ["metrics.json", "eval.json", "curve.parquet"])
def test_missing_file_is_named(tmp_path: Path, name: str) -> None:
    runs = make_runs(tmp_path, [TARGET, "web"], seeds=(0,))
    broken = runs[2][-1] / name
    broken.unlink()
    with pytest.raises(ValueError, match="missing file") as error:
        collect_cells(runs, TARGET)
    assert str(broken) in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("name", "drop", "key"),
    [
        ("metrics.json", ["wall_seconds"], "wall_seconds"),
        ("metrics.json", ["flops_per_token"], "flops_per_token"),
        ("eval.json", ["domains", TARGET], f"domains.{TARGET}"),
        ("eval.json", ["domains", "web", "n_tokens"], "domains.web.n_tokens"),
    ],
)
def test_missing_key_is_named(tmp_path: Path, name: str, drop: list[str], key: str) -> None:
    runs = make_runs(tmp_path, [TARGET, "web"], seeds=(0,))
    path = runs[1][-1] / name
    payload = json.loads(path.read_text())
    parent = payload
    for part in drop[:-1]:
        parent = parent[part]
    del parent[drop[-1]]
    path.write_text(json.dumps(payload))
    with pytest.raises(ValueError) as error:
        collect_cells(runs, TARGET)
    assert str(path) in str(error.value) and repr(key) in str(error.value)


def test_missing_curve_column_is_named(tmp_path: Path) -> None:
    runs = make_runs(tmp_path, [TARGET, "web"], seeds=(0,))
    path = runs[0][-1] / "curve.parquet"
    pl.read_parquet(path).drop("bits_per_byte").write_parquet(path)
    with pytest.raises(ValueError, match="bits_per_byte") as error:
        collect_cells(runs, TARGET)
    assert str(path) in str(error.value)


def test_repeated_cell_is_refused(tmp_path: Path) -> None:
    runs = make_runs(tmp_path, [TARGET, "web"], seeds=(0,))
    with pytest.raises(ValueError, match="twice"):
        collect_cells([*runs, runs[0]], TARGET)


def test_a_cell_from_step_0_trained_every_token_it_saw(tmp_path: Path) -> None:
    runs = make_runs(tmp_path, [TARGET, "web"], seeds=(0, 1))
    path = runs[0][-1] / "metrics.json"  # null, as a cell trained from step 0 writes it
    path.write_text(json.dumps({**json.loads(path.read_text()), "inherited": None}))
    cells = collect_cells(runs, TARGET)["cells"]  # the others have no key: runs before trunks
    assert cells.schema["inherited_tokens"] == pl.Int64 == cells.schema["trained_tokens"]
    assert cells.schema["flops_per_token"] == pl.Float64
    assert cells.schema["inherited_source"] == pl.String
    assert cells["inherited_tokens"].to_list() == [0] * len(runs)
    assert cells["trained_tokens"].equals(cells["tokens_seen"], check_names=False)
    assert cells["inherited_source"].null_count() == len(runs)
    assert cells["flops_per_token"].to_list() == [6.0e5 + seed for seed in cells["seed"]]


def test_a_branched_cell_trained_only_what_it_did_not_inherit(tmp_path: Path) -> None:
    domains = [TARGET, "web"]
    trunk = {"source": "trunk", "from": "main", "step": 6, "tokens": 4096 * 6}
    prefix = {"source": "cell", "from": "0.5/shuffled/wsd/seed1", "step": 4, "tokens": 4096 * 4}
    runs = [
        write_run(tmp_path, "0.5", "late", 0, domains, "wsd", trunk),  # sees 4096 * 10
        write_run(tmp_path, "0.5", "late", 1, domains, "constant", prefix),  # sees 4096 * 11
        write_run(tmp_path, "0.5", "late", 2, domains, "wsd"),
    ]
    cells = collect_cells(runs, TARGET)["cells"]
    columns = ("tokens_seen", "inherited_tokens", "trained_tokens", "inherited_source")
    got = {(arm, seed): rest for arm, seed, *rest in cells.select("arm", "seed", *columns).rows()}
    assert got == {
        ("wsd", 0): [4096 * 10, 4096 * 6, 4096 * 4, "trunk"],
        ("constant", 1): [4096 * 11, 4096 * 4, 4096 * 7, "cell"],
        ("wsd", 2): [4096 * 12, 0, 4096 * 12, None],
    }


@pytest.mark.parametrize(
    ("inherited", "match"),
    [
        ({"source": "branch", "from": "x", "step": 1, "tokens": 4096}, "'inherited.source'"),
        ({"source": "trunk", "from": "x", "step": 1}, "'inherited.tokens'"),
        ({"source": "trunk", "from": "x", "step": 99, "tokens": 4096 * 99}, "not in"),
    ],
)
def test_an_inherited_prefix_that_cannot_be_is_refused(
    tmp_path: Path, inherited: dict, match: str
) -> None:
    run = write_run(tmp_path, "0.5", "late", 0, [TARGET, "web"], "wsd", inherited)
    with pytest.raises(ValueError, match=match) as error:
        collect_cells([run], TARGET)
    assert str(run[-1] / "metrics.json") in str(error.value) and "\n" not in str(error.value)


def test_write_tables_round_trips(tmp_path: Path) -> None:
    collected = collect_cells(make_runs(tmp_path / "runs", [TARGET, "web"]), TARGET)
    cells, curves = collected["cells"], collected["curves"]
    tables = {"cells": cells, "summary": summarise(cells), "curves": curves}
    out_dir = tmp_path / "tables"
    written = write_tables(tables, out_dir)
    assert sorted(p.name for p in written) == sorted(
        f"{n}.{e}" for n in tables for e in ("parquet", "csv")
    )
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(p.name for p in written)
    for name, table in tables.items():
        assert pl.read_parquet(out_dir / f"{name}.parquet").equals(table)
        assert pl.read_csv(out_dir / f"{name}.csv", schema=table.schema).equals(table)


def test_write_tables_leaves_no_partial_file_on_failure(tmp_path: Path) -> None:
    # CSV cannot hold a list column, so the csv write fails after the parquet one succeeded.
    nested = pl.DataFrame({"x": [[1.0, math.pi]]})
    with pytest.raises(Exception):  # noqa: B017 - polars' error type is not part of the contract
        write_tables({"nested": nested}, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nested.parquet"]


def test_collect_streams_reads_barcodes_and_repeats(tmp_path: Path) -> None:
    from curriculab.io import write_json
    from curriculab.streams.build import build_order
    from curriculab.streams.schedules import BudgetSpec
    from curriculab.streams.summary import BARCODE_BINS, summarise_order

    budget = BudgetSpec("fixed_tokens", total_blocks=600, max_epochs=None)
    spec = {"family": "end_window", "window": 0.25, "d1_share": 1.0, "hold_total": False}
    names, order = build_order({"d1": 100, "d2": 300}, "d1", 0.2, "late", spec, 0, budget)
    write_json(tmp_path / "s.json", summarise_order(names, order, "d1", seq_len=16))
    barcodes, domains = collect_streams([("0.2", "late", 0, tmp_path / "s.json")])
    assert barcodes.height == BARCODE_BINS
    assert barcodes.sort("bin")["target_share"].to_list()[-1] == 1.0
    d1 = domains.filter(pl.col("domain") == "d1").row(0, named=True)
    used = int((order.domains == names.index("d1")).sum())
    assert d1["blocks_used"] == used and d1["unique_blocks"] == 60
    assert d1["repeated_tokens"] == (used - 60) * 16 and d1["max_epoch"] == used // 60
