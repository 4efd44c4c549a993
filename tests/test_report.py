"""Tests for the HTML report: self-contained, escaped, every chart, schedule and arm present.

The synthetic study crosses 2 ratios x 3 schedules x 2 learning-rate arms x 3 seeds. Its domain
orders, exposure and learning-rate profiles come from the real `curriculab.lr` functions; its
losses decay exponentially from ln(vocab) to a floor well below each cell's unigram reference;
the tables the report reads are made by the real `analyse`, `summarise` and `reference_table`.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import altair as alt
import numpy as np
import polars as pl
import pytest
import vl_convert

from curriculab.analysis.aggregate import collect_cells, summarise
from curriculab.analysis.references import DEFAULT_MARGIN, reference_table
from curriculab.analysis.statistics import analyse, t_interval
from curriculab.lr import arm_description, exposure, lr_by_bin, lr_per_position
from curriculab.report.charts import barcode_chart, final_loss_chart, learning_curve_chart
from curriculab.report.html import render_report
from tests.test_aggregate import TARGET, make_runs

CHART_IDS = (
    "chart-barcodes",
    "chart-d1-curves",
    "chart-d2-curves",
    "chart-final-loss",
    "chart-paired",
    "chart-h2",
)
SCHEDULES = ("shuffled", "d1_last", "d1_first")
# How much a schedule leaves D1 loss above the best final value (nats/token): a plausible shape.
D1_PENALTY = {"shuffled": 0.10, "d1_last": 0.0, "d1_first": 0.25}
# Unigram reference per domain (nats/token): what a model of token frequencies alone reaches.
UNIGRAM = {"code": 5.2, "web": 5.8, "books": 5.9}
TEST_TOKENS = {"code": 4000, "web": 3000, "books": 1000}  # test-split tokens: D2 pooling weights
POSITIONS, BATCH, BINS = 2000, 4, 50  # sequences per stream, per step; barcode stretches


@dataclass(frozen=True)
class Arm:
    """The learning-rate fields of a TrainConfig (`curriculab.lr.LRSettings`)."""

    lr_schedule: str
    decay_start: str = "fixed"
    lr: float = 3e-3
    warmup_fraction: float = 0.05
    min_lr_fraction: float = 0.1
    decay_fraction: float = 0.2


ARMS = {"constant": Arm("constant"), "wsd_window": Arm("wsd", decay_start="window")}
# The cooldown of wsd_window lowers every final loss a little (nats/token).
ARM_BONUS = {"constant": 0.0, "wsd_window": 0.08}


def synthetic_study(
    ratios: tuple[str, ...] = ("0.05", "0.2"), seeds: tuple[int, ...] = (0, 1, 2)
) -> dict[str, Any]:
    """A study dict as the pipeline passes it, with two D2 domains to exercise pooling."""
    return {
        "name": "tiny <order> & mix",
        "target_domain": "code",
        "domains": ["code", "web", "books"],
        "ratios": list(ratios),
        "schedules": list(SCHEDULES),
        "arms": {name: arm_description(arm) for name, arm in ARMS.items()},
        "baseline": "shuffled",
        "seeds": list(seeds),
        "model_preset": "tiny",
    }


def _natural(ratio: str) -> float:
    """D1's share of the stream at D1/D2 ratio `ratio`."""
    return float(ratio) / (1 + float(ratio))


def stream_order(ratio: str, schedule: str, seed: int) -> np.ndarray:
    """(POSITIONS,) domain index per sequence: 0 = code (D1), 1 = web, 2 = books (3:1)."""
    rng = np.random.default_rng([seed, int(1000 * float(ratio)), len(schedule)])
    n_d1 = round(_natural(ratio) * POSITIONS)
    d1 = np.zeros(POSITIONS, dtype=bool)
    if schedule == "shuffled":
        d1[rng.permutation(POSITIONS)[:n_d1]] = True
    elif schedule == "d1_last":
        d1[POSITIONS - n_d1 :] = True
    else:
        d1[:n_d1] = True
    d2 = np.where(rng.random(POSITIONS) < 0.75, 1, 2)
    return np.where(d1, 0, d2)


def _window_start(ratio: str, schedule: str) -> float | None:
    """Where the schedule's final D1 window starts (fraction of training); None without one."""
    return 1 - _natural(ratio) if schedule == "d1_last" else None


def synthetic_exposure(study: dict[str, Any]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(exposure, lr_profile) per cell, as collect_cells reads them from metrics.json."""
    names = study["domains"]
    exposure_rows, profile_rows = [], []
    for ratio in study["ratios"]:
        for schedule in study["schedules"]:
            for arm in study["arms"]:
                cfg = ARMS[arm]
                lrs = lr_per_position(POSITIONS, BATCH, cfg, _window_start(ratio, schedule))
                for seed in study["seeds"]:
                    cell = {
                        "ratio": ratio,
                        "ratio_value": float(ratio),
                        "schedule": schedule,
                        "arm": arm,
                        "seed": seed,
                    }
                    order = stream_order(ratio, schedule, seed)
                    for name, stats in exposure(order, names, lrs, cfg.lr).items():
                        exposure_rows.append({**cell, "domain": name, **stats})
                    for i, value in enumerate(lr_by_bin(lrs, cfg.lr, BINS)):
                        profile_rows.append(
                            {**cell, "bin": i, "progress": i / BINS, "lr_fraction": value}
                        )
    return pl.DataFrame(exposure_rows), pl.DataFrame(profile_rows)


def synthetic_tables(
    study: dict[str, Any], stalled: tuple[str, str, str] | None = None
) -> dict[str, pl.DataFrame]:
    """cells, curves, exposure and lr_profile; losses decay exponentially from ln(vocab).

    stalled: a (ratio, schedule, arm) group whose D1 loss ends only 0.04 nats/token below its
    unigram reference: a model that learned token frequencies and little more.
    """
    rng = np.random.default_rng(0)
    steps = np.arange(0, 11) * 100
    target = study["target_domain"]
    weights = {d: TEST_TOKENS.get(d, 1000) for d in study["domains"]}
    cell_rows, curve_rows = [], []
    for ratio in study["ratios"]:
        for schedule in study["schedules"]:
            for arm in study["arms"]:
                for seed in study["seeds"]:
                    cell = {
                        "ratio": ratio,
                        "ratio_value": float(ratio),
                        "schedule": schedule,
                        "arm": arm,
                        "seed": seed,
                    }
                    final, reference = {}, {}
                    for domain in study["domains"]:
                        is_target = domain == target
                        reference[domain] = UNIGRAM.get(domain, 5.5) + rng.normal(0, 0.01)
                        floor = 3.0 + (D1_PENALTY[schedule] - float(ratio) if is_target else 0.5)
                        floor += rng.normal(0, 0.02) - ARM_BONUS.get(arm, 0.0)
                        if is_target and stalled == (ratio, schedule, arm):
                            floor = reference[domain] - 0.04
                        loss = floor + (math.log(8192) - floor) * np.exp(-steps / 250)
                        final[domain] = float(loss[-1])
                        curve_rows += [
                            {
                                **cell,
                                "step": int(step),
                                "tokens_seen": int(step) * 4096,
                                "domain": domain,
                                "loss": float(value),
                                "bits_per_byte": float(value) / math.log(2) / 4,
                                "is_target": is_target,
                                "n_tokens": weights[domain],
                                "unigram_loss": reference[domain],
                            }
                            for step, value in zip(steps, loss, strict=True)
                        ]
                    d2 = [d for d in study["domains"] if d != target]
                    d2_weights = [weights[d] for d in d2]
                    cell_rows.append(
                        {
                            **cell,
                            "d1_test_loss": final[target],
                            "d2_test_loss": float(
                                np.average([final[d] for d in d2], weights=d2_weights)
                            ),
                            "d1_unigram_loss": reference[target],
                            "d2_unigram_loss": float(
                                np.average([reference[d] for d in d2], weights=d2_weights)
                            ),
                            **{f"test_loss_{d}": final[d] for d in study["domains"]},
                            **{f"unigram_loss_{d}": reference[d] for d in study["domains"]},
                            "tokens_seen": int(steps[-1]) * 4096,
                            "wall_seconds": 30.0 + rng.random(),
                            "tokens_per_second": 15000.0 + rng.random(),
                        }
                    )
    exposure_table, lr_profile = synthetic_exposure(study)
    return {
        "cells": pl.DataFrame(cell_rows),
        "curves": pl.DataFrame(curve_rows),
        "exposure": exposure_table,
        "lr_profile": lr_profile,
    }


def synthetic_barcodes(study: dict[str, Any]) -> pl.DataFrame:
    """D1 share per stretch of training of every stream (no arm: the arms share a stream)."""
    rows = []
    for ratio in study["ratios"]:
        for schedule in study["schedules"]:
            for seed in study["seeds"]:
                shares = (stream_order(ratio, schedule, seed) == 0).reshape(BINS, -1).mean(axis=1)
                rows += [
                    {
                        "ratio": ratio,
                        "ratio_value": float(ratio),
                        "schedule": schedule,
                        "seed": seed,
                        "bin": i,
                        "progress": i / BINS,
                        "target_share": float(share),
                    }
                    for i, share in enumerate(shares)
                ]
    return pl.DataFrame(rows)


def report_tables(collected: dict[str, pl.DataFrame], study: dict[str, Any]) -> dict:
    """The tables the aggregate step hands the report (workflow/scripts/aggregate.py)."""
    barcodes = synthetic_barcodes(study)
    tables = analyse(collected["cells"], collected["curves"], barcodes, study["baseline"])
    return {
        **collected,
        **tables,
        "summary": summarise(tables["cells"]),
        "references": reference_table(tables["cells"], study["domains"], DEFAULT_MARGIN),
        "barcodes": barcodes,
    }


def render(
    tmp_path: Path,
    study: dict[str, Any] | None = None,
    stalled: tuple[str, str, str] | None = None,
) -> tuple[Path, dict[str, pl.DataFrame]]:
    """Render the synthetic report; returns its path and the tables it was given."""
    study = study or synthetic_study()
    tables = report_tables(synthetic_tables(study, stalled), study)
    out = tmp_path / "reports" / "report.html"
    render_report(tables, study, out)
    return out, tables


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, pl.DataFrame]]:
    """The default synthetic report (every group learned): its text and its tables."""
    out, tables = render(tmp_path_factory.mktemp("report"))
    return out.read_text(encoding="utf-8"), tables


def body_of(page: str) -> str:
    """The page from its <h1> on: past the inlined Vega bundle, which may hold any text."""
    return page[page.rindex("<h1>") :]


def section_tables(page: str) -> dict[str, list[list[str]]]:
    """<h2> heading -> rows of the first table under it, as cell texts (tags stripped)."""
    found = {}
    for part in body_of(page).split("<h2>")[1:]:
        heading, _, rest = part.partition("</h2>")
        block = re.search(r"<table>(.*?)</table>", rest.split("<h2>")[0], re.S)
        if block:
            rows = re.findall(r"<tr>(.*?)</tr>", block.group(1), re.S)
            found[html.unescape(heading)] = [
                [
                    html.unescape(re.sub(r"<[^>]+>", "", cell))
                    for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)
                ]
                for row in rows
            ]
    return found


def table_under(page: str, prefix: str) -> list[list[str]]:
    """Rows of the table under the one heading that starts with `prefix` (header row first)."""
    (rows,) = [rows for heading, rows in section_tables(page).items() if heading.startswith(prefix)]
    return rows


def mark_type(spec: dict[str, Any]) -> str:
    mark = spec["mark"]
    return mark if isinstance(mark, str) else mark["type"]


def test_synthetic_losses_sit_below_their_unigram_references() -> None:
    """The fixture is realistic: every model beats the unigram; a stalled group barely does."""
    study = synthetic_study()
    cells = synthetic_tables(study)["cells"]
    for domain in study["domains"]:
        gain = cells[f"unigram_loss_{domain}"] - cells[f"test_loss_{domain}"]
        assert gain.min() > 1.0
    stalled = synthetic_tables(study, ("0.05", "d1_first", "constant"))["cells"]
    gain = stalled["unigram_loss_code"] - stalled["test_loss_code"]
    assert int((gain < DEFAULT_MARGIN).sum()) == len(study["seeds"])


def test_report_is_self_contained_and_complete(tmp_path: Path) -> None:
    out, _ = render(tmp_path)
    page = out.read_text(encoding="utf-8")
    tags_with_remote_urls = [
        tag
        for tag in re.findall(r"<[a-zA-Z][^<>]*>", page)
        if re.search(r"""\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", tag, re.IGNORECASE)
    ]
    assert tags_with_remote_urls == []
    assert re.search(r"<script\b[^>]*\bsrc\s*=", page, re.IGNORECASE) is None
    assert re.search(r"<link\b", page, re.IGNORECASE) is None
    assert re.search(r"@import|url\(\s*['\"]?https?:", body_of(page), re.IGNORECASE) is None
    for chart_id in CHART_IDS:
        assert page.count(f'id="{chart_id}"') == 1
    for schedule in SCHEDULES:
        assert f"<td>{schedule}</td>" in page
    for arm in ARMS:
        assert f"<td>{arm}</td>" in page
    assert list(out.parent.iterdir()) == [out]  # the atomic write left no temporary behind


def test_bundle_inlined_exactly_once(rendered: tuple[str, dict]) -> None:
    page, _ = rendered
    vl_version = "_".join(alt.SCHEMA_VERSION.split(".")[:2])
    bundle = vl_convert.javascript_bundle(vl_version=vl_version)
    assert page.count(bundle) == 1


def test_study_section_lists_the_arms_and_the_full_grid(rendered: tuple[str, dict]) -> None:
    page, _ = rendered
    study = synthetic_study()
    arms = "; ".join(f"{name}: {text}" for name, text in study["arms"].items())
    assert f"<dt>learning-rate arms</dt><dd>{html.escape(arms)}</dd>" in page
    assert "wsd, peak 0.003" in arms  # the real arm_description
    assert "36 with results of 36 in the grid" in page  # 2 ratios x 3 schedules x 2 arms x 3


def test_summary_table_has_mean_std_and_unigram_per_arm(rendered: tuple[str, dict]) -> None:
    page, tables = rendered
    rows = table_under(page, "Summary: final test loss")
    assert rows[0][:3] == ["D1 ratio", "schedule", "lr arm"]
    expected = [
        [
            row["ratio"],
            row["schedule"],
            row["arm"],
            str(row["n_seeds"]),
            f"{row['d1_test_loss_mean']:.4f} ± {row['d1_test_loss_std']:.4f}",
            f"{row['d1_unigram_loss_mean']:.4f}",
            f"{row['d2_test_loss_mean']:.4f} ± {row['d2_test_loss_std']:.4f}",
            f"{row['d2_unigram_loss_mean']:.4f}",
        ]
        for row in tables["summary"].iter_rows(named=True)
    ]
    assert rows[1:] == expected
    assert len(expected) == 2 * len(SCHEDULES) * len(ARMS)


def test_single_seed_std_is_shown_as_unknown(tmp_path: Path) -> None:
    out, tables = render(tmp_path, synthetic_study(seeds=(7,)))
    page = out.read_text(encoding="utf-8")
    mean = tables["summary"].row(0, named=True)["d1_test_loss_mean"]
    assert f"{mean:.4f} ± n/a" in page


def test_text_is_escaped(tmp_path: Path) -> None:
    """Study name, arm names and arm descriptions reach the page only as text, everywhere."""
    study = synthetic_study()
    study["name"] = "<script>alert('x')</script>"
    arm = "<i>wsd</i>"
    study["arms"] = {"constant": "flat <b>lr</b> & no decay", arm: "cooldown"}
    tables = synthetic_tables(synthetic_study(), stalled=("0.05", "d1_first", "wsd_window"))
    tables = {
        name: t.with_columns(pl.col("arm").replace("wsd_window", arm)) if "arm" in t.columns else t
        for name, t in tables.items()
    }
    out = tmp_path / "report.html"
    render_report(report_tables(tables, study), study, out)
    page = out.read_text(encoding="utf-8")
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert" in page
    assert "<b>lr</b>" not in page and "flat &lt;b&gt;lr&lt;/b&gt; &amp; no decay" in page
    assert "<i>wsd" not in page
    body = body_of(page)
    # Verdicts, warning, tables: the arm is named in each, always escaped.
    assert body.count("&lt;i&gt;wsd&lt;/i&gt;") > 10
    assert "lr &lt;i&gt;wsd&lt;/i&gt;, code" in body  # the warning names the stalled group


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
    study = synthetic_study(ratios=("0.05",), seeds=(0,))
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


def test_report_renders_from_collected_runs(tmp_path: Path) -> None:
    domains = [TARGET, "web", "books"]
    collected = collect_cells(make_runs(tmp_path / "runs", domains, seeds=(0, 1)), TARGET)
    study = synthetic_study(seeds=(0, 1))
    study.update(
        target_domain=TARGET,
        domains=domains,
        ratios=["0.5", "10", "0.10", "2", "0.05"],
        schedules=["shuffled", "d1_last"],
        arms={"wsd": "wsd", "constant": "constant"},
    )
    out = tmp_path / "report.html"
    render_report(report_tables(collected, study), study, out)
    page = out.read_text(encoding="utf-8")
    for chart_id in CHART_IDS:
        assert f'id="{chart_id}"' in page
    assert "D2 (web, books) learning curves" in page
    assert "40 with results of 40 in the grid" in page
    exposure_rows = table_under(page, "Exposure")[1:]
    assert len(exposure_rows) == 5 * 2 * 2 * len(domains)


def test_report_states_verdicts_data_cost_and_provenance(tmp_path: Path) -> None:
    from curriculab.provenance import config_hash, git_commit, provenance

    study = synthetic_study()
    tables = report_tables(synthetic_tables(study), study)
    info = provenance({"study": "x"}, tmp_path)
    assert info["git commit"] == "unknown"  # tmp_path is no git checkout
    assert config_hash({"a": 1, "b": 2}) == config_hash({"b": 2, "a": 1})
    assert git_commit(Path(__file__).parents[1]) != "unknown"
    out = tmp_path / "report.html"
    render_report(tables, study, out, info)
    page = out.read_text(encoding="utf-8")
    for verdict in tables["verdicts"].iter_rows(named=True):
        assert f"{verdict['hypothesis']} {verdict['verdict']}" in page
    for heading in ("Verdicts", "Speed of learning and forgetting", "Cost", "Provenance"):
        assert f"<h2>{heading}</h2>" in page
    assert info["config sha256"] in page


def _p(value: float) -> str:
    return "n/a" if math.isnan(value) else (f"{value:.2g}" if value >= 1e-4 else "&lt;1e-4")


def test_verdicts_are_stated_per_arm_with_holm(rendered: tuple[str, dict]) -> None:
    page, tables = rendered
    verdicts = tables["verdicts"]
    # The family: d1_last (D1 latest) under both arms, H1 per ratio and H2, all tested.
    assert set(verdicts["arm"]) == set(ARMS) and set(verdicts["schedule"]) == {"d1_last"}
    assert verdicts.height == len(ARMS) * 3
    assert set(verdicts["correction"]) == {"holm"}
    assert verdicts["family_size"].to_list() == [verdicts.height] * verdicts.height
    items = re.findall(r"<li><b>(H[12]), lr ([^<]*)</b>: (.*?)</li>", body_of(page))
    assert len(items) == verdicts.height
    for row in verdicts.iter_rows(named=True):
        (text,) = [
            text
            for hypothesis, arm, text in items
            if hypothesis == row["hypothesis"]
            and arm == row["arm"]
            and (row["hypothesis"] == "H2" or f"At D1 ratio {row['ratio']}," in text)
        ]
        assert f"{row['estimate']:+.3f}" in text
        assert f"95% CI {row['ci_low']:+.3f} to {row['ci_high']:+.3f}" in text
        assert f"p = {_p(row['p_value'])}, Holm-adjusted {_p(row['p_adjusted'])}" in text
        assert f"{row['hypothesis']} {row['verdict']}." in text
    assert f"The {verdicts.height} tests above are one family" in page
    assert "Holm's step-down correction" in page


def test_no_warning_when_every_group_learned(rendered: tuple[str, dict]) -> None:
    page, tables = rendered
    assert tables["references"]["learned"].all()
    body = body_of(page)
    assert 'class="warning"' not in body
    assert "Every group of cells learned beyond token frequencies" in body
    rows = table_under(page, "Did the models learn beyond token frequencies?")
    assert len(rows) - 1 == 2 * len(SCHEDULES) * len(ARMS) * 3  # ratio x schedule x arm x domain
    assert {row[-1] for row in rows[1:]} == {"yes"}


def test_warning_names_the_group_that_did_not_learn_beyond_the_unigram(tmp_path: Path) -> None:
    out, tables = render(tmp_path, stalled=("0.05", "d1_first", "constant"))
    body = body_of(out.read_text(encoding="utf-8"))
    (warning,) = re.findall(r'<p class="warning">(.*?)</p>', body, re.S)
    assert "1 group(s) did not beat the unigram reference by 0.1 nats/token" in warning
    assert "D1 ratio 0.05, d1_first, lr constant, code" in warning
    # The other arm and ratio of the same schedule learned, and are not named.
    assert "lr wsd_window" not in warning and "D1 ratio 0.2" not in warning
    (failed,) = tables["references"].filter(~pl.col("learned")).iter_rows(named=True)
    assert f"gain {failed['gain_min']:.3f}" in warning
    rows = table_under(body, "Did the models learn beyond token frequencies?")
    no = [row[:4] for row in rows[1:] if row[-1] == "no"]
    assert no == [["0.05", "d1_first", "constant", "code"]]


def test_exposure_section_lists_lr_weighted_shares(rendered: tuple[str, dict]) -> None:
    page, tables = rendered
    rows = table_under(page, "Exposure")
    assert rows[0] == [
        "D1 ratio",
        "schedule",
        "lr arm",
        "domain",
        "share of tokens",
        "learning-rate-weighted share",
        "mean lr of its tokens / peak",
    ]
    expected = (
        tables["exposure"]
        .group_by("ratio", "ratio_value", "schedule", "arm", "domain")
        .agg(pl.col("token_share", "lr_weighted_share", "mean_lr_fraction").mean())
        .sort("ratio_value", "schedule", "arm", "domain")
    )
    assert rows[1:] == [
        [r, s, a, d, f"{share:.3f}", f"{weighted:.3f}", f"{mean_lr:.3f}"]
        for r, _, s, a, d, share, weighted, mean_lr in expected.iter_rows()
    ]
    # The point of the section: D1 placed in a cooldown is trained at a low learning rate.
    late = expected.filter(pl.col("schedule") == "d1_last", pl.col("domain") == "code")
    for _, _, _, arm, _, share, weighted, _ in late.iter_rows():
        if arm == "constant":
            assert weighted == pytest.approx(share, abs=0.01)  # only the warmup differs
        else:
            assert weighted < 0.7 * share


def test_h2_sentence_warns_when_there_is_no_benefit_at_any_ratio() -> None:
    from curriculab.report.sections import verdict_sentences

    def verdicts(h1_estimates: list[float], arm: str = "constant") -> list[dict]:
        rows = [
            {
                "hypothesis": "H1",
                "schedule": "late",
                "arm": arm,
                "ratio": str(i),
                "estimate": e,
                "ci_low": e - 0.1,
                "ci_high": e + 0.1,
                "n": 3,
                "p_value": 0.01,
                "p_adjusted": 0.05,
                "family_size": 6,
                "verdict": "x",
            }
            for i, e in enumerate(h1_estimates)
        ]
        rows.append(
            {
                "hypothesis": "H2",
                "schedule": "late",
                "arm": arm,
                "ratio": "all",
                "estimate": -0.1,
                "ci_low": -0.2,
                "ci_high": -0.05,
                "n": 9,
                "p_value": 0.001,
                "p_adjusted": 0.006,
                "family_size": 6,
                "verdict": "supported",
            }
        )
        return rows

    harmful = pl.DataFrame(verdicts([0.4, 0.7]))
    assert "harm grows" in verdict_sentences(harmful, "shuffled")
    assert "harm grows" not in verdict_sentences(pl.DataFrame(verdicts([-0.4, 0.2])), "shuffled")
    # Per arm: harm under one arm and a benefit under the other gives one caution, for the first.
    mixed = verdict_sentences(
        pl.DataFrame(verdicts([0.4, 0.7], "constant") + verdicts([-0.4, 0.2], "wsd_window")),
        "shuffled",
    )
    assert mixed.count("harm grows") == 1
    (caution,) = [item for item in mixed.split("<li>") if "harm grows" in item]
    assert "H2, lr constant" in caution
