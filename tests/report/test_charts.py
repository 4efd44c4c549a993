"""Tests for the report's chart specs: learning curves with the unigram reference, the barcode
with the learning rate of every arm under it, final losses per seed; numbers as the tables
write them."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest

from curriculab.analysis.statistics import t_interval
from curriculab.report.charts import (
    barcode_chart,
    benefit_chart,
    final_loss_chart,
    learning_curve_chart,
    paired_heatmap,
)
from curriculab.report.fmt import vega_tokens
from tests.support.report_page import mark_type
from tests.support.report_study import (
    ARMS,
    BINS,
    report_tables,
    synthetic_barcodes,
    synthetic_study,
    synthetic_tables,
)


def test_learning_curve_chart_averages_over_seeds() -> None:
    study = synthetic_study(ratios=("0.05",))
    curves = synthetic_tables(study)["curves"]
    spec = learning_curve_chart(curves, "D1 (code)", is_target=True).to_dict()
    records = spec["data"]["values"]
    for arm in ARMS:
        expected = (
            curves.filter(
                pl.col("is_target"),
                pl.col("schedule") == "d1_last",
                pl.col("arm") == arm,
                pl.col("step") == 1000,
            )
            .get_column("loss")
            .to_list()
        )
        (record,) = [
            r
            for r in records
            if r["schedule"] == "d1_last" and r["arm"] == arm and r["step"] == 1000
        ]
        assert record["loss_mean"] == pytest.approx(np.mean(expected))
        _, low, high = t_interval(np.array(expected))
        assert record["loss_low"] == pytest.approx(low) and record["loss_high"] == pytest.approx(
            high
        )
        assert record["panel"] == f"D1 ratio 0.05 · lr {arm}"
    assert "tokens seen" in str(spec) and "test loss (nats/token)" in str(spec)


def test_learning_curve_chart_pools_other_domains_by_tokens() -> None:
    study = synthetic_study(ratios=("0.05",), seeds=(0,), domains=("code", "web", "books"))
    curves = synthetic_tables(study)["curves"]
    weights = {"web": 3000, "books": 1000}
    spec = learning_curve_chart(curves, "D2", is_target=False).to_dict()
    point = curves.filter(
        ~pl.col("is_target"),
        pl.col("schedule") == "shuffled",
        pl.col("arm") == "constant",
        pl.col("step") == 500,
    )
    losses = dict(zip(point["domain"], point["loss"], strict=True))
    references = dict(zip(point["domain"], point["unigram_loss"], strict=True))
    (record,) = [
        r
        for r in spec["data"]["values"]
        if r["schedule"] == "shuffled" and r["arm"] == "constant" and r["step"] == 500
    ]
    pooled = np.average([losses["web"], losses["books"]], weights=[3000, 1000])
    assert record["loss_mean"] == pytest.approx(pooled)
    reference = np.average([references["web"], references["books"]], weights=[3000, 1000])
    assert record["unigram_loss"] == pytest.approx(reference)
    # Other weights move the pooled value: the weights are read, not assumed.
    reweighted = curves.with_columns(
        pl.col("domain")
        .replace_strict(weights, default=500, return_dtype=pl.Int64)
        .alias("n_tokens")
    )
    spec = learning_curve_chart(reweighted, "D2", is_target=False).to_dict()
    (record,) = [
        r
        for r in spec["data"]["values"]
        if r["schedule"] == "shuffled" and r["arm"] == "constant" and r["step"] == 500
    ]
    assert record["loss_mean"] == pytest.approx(pooled)  # the same 3:1 weights
    equal = curves.drop("n_tokens")
    spec = learning_curve_chart(equal, "D2", is_target=False).to_dict()
    (record,) = [
        r
        for r in spec["data"]["values"]
        if r["schedule"] == "shuffled" and r["arm"] == "constant" and r["step"] == 500
    ]
    assert record["loss_mean"] == pytest.approx(np.mean([losses["web"], losses["books"]]))


def test_learning_curves_draw_a_dashed_unigram_reference() -> None:
    study = synthetic_study()
    curves = synthetic_tables(study)["curves"]
    spec = learning_curve_chart(curves, "D1 (code)", is_target=True).to_dict()
    (rule,) = [layer for layer in spec["spec"]["layer"] if mark_type(layer) == "rule"]
    assert rule["mark"]["strokeDash"]  # dashed, unlike the loss lines
    assert rule["encoding"]["y"]["field"] == "unigram_loss"
    assert rule["encoding"]["y"]["aggregate"] == "mean"
    assert rule["encoding"]["detail"]["field"] == "schedule"  # one per schedule, in grey
    assert "color" not in rule["encoding"] and rule["mark"]["color"] == "#555"
    assert "unigram reference" in str(spec["title"])
    d1 = curves.filter(pl.col("is_target"))
    expected = d1.group_by("ratio", "schedule", "arm", "step").agg(pl.col("unigram_loss").mean())
    records = {(r["ratio"], r["schedule"], r["arm"], r["step"]): r for r in spec["data"]["values"]}
    assert len(records) == expected.height
    for ratio, schedule, arm, step, reference in expected.iter_rows():
        record = records[(ratio, schedule, arm, step)]
        assert record["unigram_loss"] == pytest.approx(reference)
        if step == 1000:  # trained models end below the reference, as in a real study
            assert record["loss_mean"] < reference - 1.0
    panels = {r["panel"] for r in spec["data"]["values"]}
    assert panels == {f"D1 ratio {r} · lr {a}" for r in study["ratios"] for a in ARMS}


def barcode_blocks(spec: dict[str, Any]) -> dict[str, tuple[dict, dict]]:
    """Strip title -> (D1-share strip, learning-rate layer under it) of the barcode chart."""
    blocks = {}
    for row in spec["vconcat"]:
        for block in row["hconcat"]:
            strip, line = block["vconcat"]
            blocks[strip["title"]] = (strip, line)
    return blocks


def test_barcode_chart_draws_the_first_seed_of_every_cell() -> None:
    study = synthetic_study()
    tables = synthetic_tables(study)
    barcodes = synthetic_barcodes(study)
    blocks = barcode_blocks(barcode_chart(barcodes, tables["lr_profile"]).to_dict())
    assert len(blocks) == len(study["ratios"]) * len(study["schedules"])
    for strip, line in blocks.values():
        assert {v["seed"] for v in strip["data"]["values"]} == {0}
        assert {v["seed"] for v in line["data"]["values"]} == {0}
        assert len(strip["data"]["values"]) == BINS
    (last, _) = blocks["d1_last · D1 ratio 0.2"]
    shares = [v["target_share"] for v in sorted(last["data"]["values"], key=lambda v: v["bin"])]
    assert max(shares) == 1.0 and min(shares) == 0.0 and shares[-1] == 1.0


def test_barcode_chart_draws_the_learning_rate_of_every_arm_under_each_strip() -> None:
    study = synthetic_study()
    profile = synthetic_tables(study)["lr_profile"]
    spec = barcode_chart(synthetic_barcodes(study), profile).to_dict()
    blocks = barcode_blocks(spec)
    expected_titles = {f"{s} · D1 ratio {r}" for s in study["schedules"] for r in study["ratios"]}
    assert set(blocks) == expected_titles
    # Rows of blocks are schedules, columns ratios in numeric order.
    assert [len(row["hconcat"]) for row in spec["vconcat"]] == [2, 2, 2]
    for schedule in study["schedules"]:
        for ratio in study["ratios"]:
            strip, line = blocks[f"{schedule} · D1 ratio {ratio}"]
            assert mark_type(strip) == "rect" and mark_type(line) == "line"
            # One time axis: the same field and [0, 1] domain, the same width, so the learning
            # rate sits directly under the D1 it meets.
            for part in (strip, line):
                assert part["encoding"]["x"]["field"] == "progress"
                assert part["encoding"]["x"]["scale"]["domain"] == [0, 1]
            assert strip["width"] == line["width"]
            assert strip["encoding"]["x"]["axis"] is None  # nothing between strip and lines
            assert strip["encoding"]["fill"]["field"] == "target_share"
            assert line["encoding"]["y"]["field"] == "lr_fraction"
            assert line["encoding"]["stroke"]["field"] == "arm"
            drawn = pl.DataFrame(line["data"]["values"])
            assert set(drawn["arm"]) == set(ARMS)
            assert set(drawn["schedule"]) == {schedule} and set(drawn["ratio"]) == {ratio}
            for arm in ARMS:
                want = profile.filter(
                    pl.col("schedule") == schedule,
                    pl.col("ratio") == ratio,
                    pl.col("arm") == arm,
                    pl.col("seed") == 0,
                ).sort("bin")
                got = drawn.filter(pl.col("arm") == arm).sort("progress")
                # Every stretch, then its last value again at 100%, where the strip ends.
                assert got["progress"].to_list() == [*want["progress"], 1.0]
                lr = want["lr_fraction"].to_list()
                assert got["lr_fraction"].to_list() == pytest.approx([*lr, lr[-1]])
    # The arms differ where they should: wsd_window cools down from d1_last's window on.
    _, line = blocks["d1_last · D1 ratio 0.2"]
    wsd = [v["lr_fraction"] for v in line["data"]["values"] if v["arm"] == "wsd_window"]
    assert wsd[20] == pytest.approx(1.0) and wsd[-1] < 0.2
    assert "learning rate" in str(spec["title"])
    assert "resolve" not in spec  # shared fill and stroke scales: each legend drawn once


def test_final_loss_chart_has_one_point_per_seed() -> None:
    study = synthetic_study()
    cells = synthetic_tables(study)["cells"]
    spec = final_loss_chart(cells).to_dict()
    assert len(spec["data"]["values"]) == cells.height
    panels = {r["panel"] for r in spec["data"]["values"]}
    assert panels == {f"D1 ratio {r} · lr {a}" for r in study["ratios"] for a in ARMS}


def _channels(spec: Any, name: str) -> list[dict[str, Any]]:
    """Every encoding of channel `name` (x, tooltip, ...) anywhere in a spec, as dicts."""
    found = []
    if isinstance(spec, dict):
        for key, value in spec.items():
            if key == name and isinstance(value, dict | list):
                found += value if isinstance(value, list) else [value]
            else:
                found += _channels(value, name)
    elif isinstance(spec, list):
        for item in spec:
            found += _channels(item, name)
    return found


def test_charts_write_numbers_as_the_tables_do() -> None:
    """Every number a tooltip shows has a format (losses with 3 decimals, as the tables); token
    counts on axes and in tooltips read 270k / 1.23M, never a raw 269952."""
    study = synthetic_study()
    tables = report_tables(synthetic_tables(study), study)
    curves = learning_curve_chart(tables["curves"], "D1 (code)", is_target=True).to_dict()
    charts = [
        curves,
        final_loss_chart(tables["cells"]).to_dict(),
        paired_heatmap(tables["paired"]).to_dict(),
        benefit_chart(tables["paired"]).to_dict(),
        barcode_chart(tables["barcodes"], tables["lr_profile"]).to_dict(),
    ]
    for spec in charts:
        tooltips = [t for t in _channels(spec, "tooltip") if isinstance(t, dict)]
        numbers = [t for t in tooltips if t.get("type") == "quantitative"]
        assert all("format" in t for t in numbers), [t for t in numbers if "format" not in t]
        for tooltip in numbers:
            assert "tokens" not in tooltip["field"]  # token counts go through tokens_label
            if "loss" in tooltip["field"] or "benefit" in tooltip["field"]:
                assert tooltip["format"].endswith(".3f"), tooltip
    axes = [x["axis"] for x in _channels(curves, "x") if x.get("field") == "tokens_seen"]
    assert axes and all(axis["labelExpr"] == vega_tokens("datum.value") for axis in axes)
    tooltip_fields = [t["field"] for t in _channels(curves, "tooltip") if isinstance(t, dict)]
    assert "tokens_label" in tooltip_fields
    assert vega_tokens("datum.tokens_seen") in str(curves)  # the label the tooltip shows
