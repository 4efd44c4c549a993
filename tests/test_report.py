"""Tests for the HTML report: self-contained, escaped, every chart and schedule present."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import altair as alt
import numpy as np
import polars as pl
import pytest
import vl_convert

from curriculab.analysis.aggregate import collect_cells, summarise
from curriculab.analysis.statistics import analyse, t_interval
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
        "seeds": list(seeds),
        "model_preset": "tiny",
    }


def synthetic_tables(study: dict[str, Any]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(cells, curves) whose losses decay exponentially from ln(vocab) with per-seed noise."""
    rng = np.random.default_rng(0)
    steps = np.arange(0, 11) * 100
    cell_rows, curve_rows = [], []
    for ratio in study["ratios"]:
        for schedule in study["schedules"]:
            for seed in study["seeds"]:
                final = {}
                for domain in study["domains"]:
                    is_target = domain == study["target_domain"]
                    floor = 3.0 + (D1_PENALTY[schedule] - float(ratio) if is_target else 0.5)
                    floor += rng.normal(0, 0.02)
                    loss = floor + (math.log(8192) - floor) * np.exp(-steps / 250)
                    final[domain] = float(loss[-1])
                    curve_rows += [
                        {
                            "ratio": ratio,
                            "ratio_value": float(ratio),
                            "schedule": schedule,
                            "seed": seed,
                            "step": int(step),
                            "tokens_seen": int(step) * 4096,
                            "domain": domain,
                            "loss": float(value),
                            "bits_per_byte": float(value) / math.log(2) / 4,
                            "is_target": is_target,
                        }
                        for step, value in zip(steps, loss, strict=True)
                    ]
                d2 = [d for d in study["domains"] if d != study["target_domain"]]
                cell_rows.append(
                    {
                        "ratio": ratio,
                        "ratio_value": float(ratio),
                        "schedule": schedule,
                        "seed": seed,
                        "d1_test_loss": final[study["target_domain"]],
                        "d2_test_loss": float(np.mean([final[d] for d in d2])),
                        "tokens_seen": int(steps[-1]) * 4096,
                        "wall_seconds": 30.0 + rng.random(),
                        "tokens_per_second": 15000.0 + rng.random(),
                    }
                )
    return pl.DataFrame(cell_rows), pl.DataFrame(curve_rows)


def synthetic_barcodes(study: dict[str, Any], bins: int = 50) -> pl.DataFrame:
    """D1 share per stretch of training: flat for shuffled, a step at the end for d1_last."""
    progress = np.arange(bins) / bins
    shapes = {
        "shuffled": np.full(bins, 0.2),
        "d1_last": (progress >= 0.8).astype(float),
        "d1_first": (progress < 0.2).astype(float),
    }
    return pl.DataFrame(
        [
            {
                "ratio": ratio,
                "ratio_value": float(ratio),
                "schedule": schedule,
                "seed": seed,
                "bin": i,
                "progress": float(progress[i]),
                "target_share": float(shapes[schedule][i]),
            }
            for ratio in study["ratios"]
            for schedule in study["schedules"]
            for seed in study["seeds"]
            for i in range(bins)
        ]
    )


def report_tables(cells: pl.DataFrame, curves: pl.DataFrame, study: dict[str, Any]) -> dict:
    """The tables the aggregate step hands the report, from synthetic cells and curves."""
    barcodes = synthetic_barcodes(study)
    tables = analyse(cells, curves, barcodes, "shuffled")
    return {**tables, "summary": summarise(tables["cells"]), "curves": curves, "barcodes": barcodes}


def render(tmp_path: Path, study: dict[str, Any] | None = None) -> tuple[Path, pl.DataFrame]:
    """Render the synthetic report; returns its path and the summary it was given."""
    study = study or synthetic_study()
    cells, curves = synthetic_tables(study)
    summary = summarise(cells)
    out = tmp_path / "reports" / "report.html"
    render_report(report_tables(cells, curves, study), study, out)
    return out, summary


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
    for chart_id in CHART_IDS:
        assert page.count(f'id="{chart_id}"') == 1
    for schedule in SCHEDULES:
        assert f"<td>{schedule}</td>" in page
    assert list(out.parent.iterdir()) == [out]  # the atomic write left no temporary behind


def test_bundle_inlined_exactly_once(tmp_path: Path) -> None:
    out, _ = render(tmp_path)
    page = out.read_text(encoding="utf-8")
    vl_version = "_".join(alt.SCHEMA_VERSION.split(".")[:2])
    bundle = vl_convert.javascript_bundle(vl_version=vl_version)
    assert page.count(bundle) == 1


def test_summary_table_has_mean_and_std_to_four_decimals(tmp_path: Path) -> None:
    out, summary = render(tmp_path)
    page = out.read_text(encoding="utf-8")
    for row in summary.iter_rows(named=True):
        for side in ("d1", "d2"):
            mean, std = row[f"{side}_test_loss_mean"], row[f"{side}_test_loss_std"]
            assert f"{mean:.4f} ± {std:.4f}" in page


def test_single_seed_std_is_shown_as_unknown(tmp_path: Path) -> None:
    out, summary = render(tmp_path, synthetic_study(seeds=(7,)))
    page = out.read_text(encoding="utf-8")
    mean = summary.row(0, named=True)["d1_test_loss_mean"]
    assert f"{mean:.4f} ± n/a" in page


def test_text_is_escaped(tmp_path: Path) -> None:
    study = synthetic_study()
    study["name"] = "<script>alert('x')</script>"
    out, _ = render(tmp_path, study)
    page = out.read_text(encoding="utf-8")
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert" in page


def test_learning_curve_chart_averages_over_seeds() -> None:
    study = synthetic_study(ratios=("0.05",))
    _, curves = synthetic_tables(study)
    spec = learning_curve_chart(curves, "D1 (code)", is_target=True).to_dict()
    records = spec["data"]["values"]
    expected = (
        curves.filter(pl.col("is_target"), pl.col("schedule") == "d1_last", pl.col("step") == 1000)
        .get_column("loss")
        .to_list()
    )
    (record,) = [r for r in records if r["schedule"] == "d1_last" and r["step"] == 1000]
    assert record["loss_mean"] == pytest.approx(np.mean(expected))
    _, low, high = t_interval(np.array(expected))
    assert record["loss_low"] == pytest.approx(low) and record["loss_high"] == pytest.approx(high)
    assert record["panel"] == "D1 ratio 0.05"
    assert "tokens seen" in str(spec) and "test loss (nats/token)" in str(spec)


def test_learning_curve_chart_pools_other_domains_by_tokens() -> None:
    study = synthetic_study(ratios=("0.05",), seeds=(0,))
    _, curves = synthetic_tables(study)
    weights = {"web": 3000, "books": 1000}
    curves = curves.with_columns(
        pl.col("domain")
        .replace_strict(weights, default=500, return_dtype=pl.Int64)
        .alias("n_tokens")
    )
    spec = learning_curve_chart(curves, "D2", is_target=False).to_dict()
    point = curves.filter(
        ~pl.col("is_target"), pl.col("schedule") == "shuffled", pl.col("step") == 500
    )
    losses = dict(zip(point["domain"], point["loss"], strict=True))
    (record,) = [
        r for r in spec["data"]["values"] if r["schedule"] == "shuffled" and r["step"] == 500
    ]
    expected = np.average([losses["web"], losses["books"]], weights=[3000, 1000])
    assert record["loss_mean"] == pytest.approx(expected)


def test_barcode_chart_draws_the_first_seed_of_every_cell() -> None:
    study = synthetic_study()
    spec = barcode_chart(synthetic_barcodes(study)).to_dict()
    values = spec["data"]["values"]
    assert {v["seed"] for v in values} == {0}
    assert len(values) == len(study["ratios"]) * len(study["schedules"]) * 50
    last = [v["target_share"] for v in values if v["schedule"] == "d1_last"]
    assert max(last) == 1.0 and min(last) == 0.0


def test_final_loss_chart_has_one_point_per_seed() -> None:
    study = synthetic_study()
    cells, _ = synthetic_tables(study)
    spec = final_loss_chart(cells).to_dict()
    assert len(spec["data"]["values"]) == cells.height
    panels = {r["panel"] for r in spec["data"]["values"]}
    assert panels == {f"D1 ratio {ratio}" for ratio in study["ratios"]}


def test_report_renders_from_collected_runs(tmp_path: Path) -> None:
    domains = [TARGET, "web", "books"]
    cells, curves = collect_cells(make_runs(tmp_path / "runs", domains, seeds=(0, 1)), TARGET)
    study = synthetic_study()
    study.update(target_domain=TARGET, domains=domains, schedules=["shuffled", "d1_last"])
    out = tmp_path / "report.html"
    render_report(report_tables(cells, curves, study), study, out)
    page = out.read_text(encoding="utf-8")
    for chart_id in CHART_IDS:
        assert f'id="{chart_id}"' in page
    assert "D2 (web, books) learning curves" in page


def test_report_states_verdicts_data_cost_and_provenance(tmp_path: Path) -> None:
    from curriculab.provenance import config_hash, git_commit, provenance

    study = synthetic_study()
    cells, curves = synthetic_tables(study)
    tables = report_tables(cells, curves, study)
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


def test_h2_sentence_warns_when_there_is_no_benefit_at_any_ratio() -> None:
    from curriculab.report.sections import verdict_sentences

    def verdicts(h1_estimates: list[float]) -> pl.DataFrame:
        rows = [
            {
                "hypothesis": "H1",
                "ratio": str(i),
                "schedule": "late",
                "estimate": e,
                "ci_low": e - 0.1,
                "ci_high": e + 0.1,
                "n": 3,
                "verdict": "x",
            }
            for i, e in enumerate(h1_estimates)
        ]
        rows.append(
            {
                "hypothesis": "H2",
                "ratio": "all",
                "schedule": "late",
                "estimate": -0.1,
                "ci_low": -0.2,
                "ci_high": -0.05,
                "n": 9,
                "verdict": "supported",
            }
        )
        return pl.DataFrame(rows)

    assert "harm grows" in verdict_sentences(verdicts([0.4, 0.7]), "shuffled")
    assert "harm grows" not in verdict_sentences(verdicts([-0.4, 0.2]), "shuffled")
