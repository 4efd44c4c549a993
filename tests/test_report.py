"""Tests for the HTML report page: self-contained, escaped, every section, schedule and arm
present; verdicts per arm with Holm; the learned-beyond-unigram warning; exposure.

The synthetic study is built in `tests/report_study.py`.
"""

from __future__ import annotations

import html
import math
import re
from pathlib import Path

import altair as alt
import polars as pl
import pytest
import vl_convert

from curriculab.analysis.aggregate import collect_cells
from curriculab.analysis.references import DEFAULT_MARGIN
from curriculab.report.html import render_report
from tests.report_study import (
    ARMS,
    CHART_IDS,
    SCHEDULES,
    body_of,
    render,
    report_tables,
    synthetic_study,
    synthetic_tables,
    table_under,
)
from tests.test_aggregate import TARGET, make_runs


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, pl.DataFrame]]:
    """The default synthetic report (every group learned): its text and its tables."""
    out, tables = render(tmp_path_factory.mktemp("report"))
    return out.read_text(encoding="utf-8"), tables


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
