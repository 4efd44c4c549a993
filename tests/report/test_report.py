"""Tests for the HTML report page: self-contained, escaped, every section, schedule and arm
present; numbers written for people; contents and chart captions; verdicts per arm with Holm;
the learned-beyond-unigram warning; exposure.

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
from curriculab.harness.tables import SCHEMA as HARNESS_SCHEMA
from curriculab.harness.tables import harness_summary
from curriculab.report.html import render_report
from tests.support.parse import parse_duration, parse_tokens
from tests.support.report_page import PageOutline, body_of, table_under, visible_text
from tests.support.report_study import (
    ARMS,
    CHART_IDS,
    SCHEDULES,
    render,
    report_tables,
    synthetic_study,
    synthetic_tables,
)
from tests.support.runs import TARGET, make_runs


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
            f"{row['d1_test_loss_mean']:.3f} ± {row['d1_test_loss_std']:.3f}",
            f"{row['d1_unigram_loss_mean']:.3f}",
            f"{row['d2_test_loss_mean']:.3f} ± {row['d2_test_loss_std']:.3f}",
            f"{row['d2_unigram_loss_mean']:.3f}",
        ]
        for row in tables["summary"].iter_rows(named=True)
    ]
    assert rows[1:] == expected
    assert len(expected) == 2 * len(SCHEDULES) * len(ARMS)


def test_single_seed_std_is_shown_as_unknown(tmp_path: Path) -> None:
    out, tables = render(tmp_path, synthetic_study(seeds=(7,)))
    page = out.read_text(encoding="utf-8")
    mean = tables["summary"].row(0, named=True)["d1_test_loss_mean"]
    assert f"{mean:.3f} ± n/a" in page


def unreadable_numbers(page: str) -> list[str]:
    """Numbers nobody should have to read: a whole number printed as a float ("269952.0")
    anywhere a reader sees, and a run of six or more bare digits in a table cell."""
    text = visible_text(page)
    cells = re.findall(r"<td\b[^>]*>(.*?)</td>", text, re.S)
    return re.findall(r"\d{4,}\.0\b", text) + [cell for cell in cells if re.search(r"\d{6}", cell)]


def test_numbers_are_written_for_people(rendered: tuple[str, dict]) -> None:
    page, tables = rendered
    assert unreadable_numbers(page) == []
    # The check can fail: what the report used to print is caught.
    assert unreadable_numbers(page.replace(">270k<", ">269952<", 1)) == ["269952"]
    # A float-printed count in a cell is caught twice: as a float and as six bare digits.
    assert unreadable_numbers(page.replace(">4.1M<", ">4096000.0<", 1)) == ["4096000.0"] * 2
    # Token counts of many sizes (the manifests of report_study; books' 950k and 950 are on the
    # three-domain page, test_report_domains), and the tokens and time the study spent, each
    # within the rounding its rule states.
    data = table_under(page, "Data")
    assert [row[3] for row in data[1:5]] == ["1.23M", "270k", "8.77M", "25.8k"]
    cells = tables["cells"]
    (_, _, n_tokens, _, _, seconds), *_ = table_under(page, "Cost")[1:]
    assert parse_tokens(n_tokens) == pytest.approx(cells["tokens_seen"].sum(), rel=0.005)
    assert parse_duration(seconds) == pytest.approx(cells["wall_seconds"].sum(), abs=0.5)
    assert re.fullmatch(r"\d+ min \d+ s", seconds)
    speed = table_under(page, "Speed of learning")
    to_target = cells.group_by("ratio", "schedule", "arm").agg(pl.col("d1_tokens_to_target").mean())
    expected = {tuple(row[:3]): row[3] for row in to_target.iter_rows()}
    for row in speed[1:]:
        assert parse_tokens(row[5]) == pytest.approx(expected[tuple(row[:3])], rel=0.005)
    assert not re.search(r">(?:nan|None|inf)<", visible_text(page))


def test_contents_link_every_section_in_page_order(rendered: tuple[str, dict]) -> None:
    page, _ = rendered
    outline = PageOutline(page)
    ids = [section_id for section_id, _ in outline.sections]
    assert None not in ids  # every <h2> has an id
    assert len(outline.ids) == len(set(outline.ids))  # and ids are unique
    assert outline.contents == [f"#{section_id}" for section_id in ids]
    assert all(link[1:] in outline.ids for link in outline.contents)
    for section_id, heading in outline.sections:
        assert f'<a href="#{section_id}">{html.escape(heading)}</a>' in page
    assert {"study", "verdicts", "data", "d1-curves", "cost", "provenance"} <= set(ids)


def test_an_optional_section_joins_the_contents_only_when_its_table_exists(
    tmp_path: Path,
) -> None:
    rows = [
        {"ratio": "0.05", "ratio_value": 0.05, "schedule": schedule, "arm": "constant",
         "seed": seed, "task": "curriculab_heldout_d1", "metric": metric,
         "value": value * (1 + 0.01 * seed) + (0.5 if schedule == "d1_last" else 0.0),
         "stderr": None, "n_docs": 120}
        for schedule in ("shuffled", "d1_last")
        for seed in (0, 1, 2)
        for metric, value in (("bits_per_byte", 2.345678), ("word_perplexity", 245080.99))
    ]  # fmt: skip
    harness = harness_summary(pl.DataFrame(rows, schema=HARNESS_SCHEMA), "shuffled")
    out, _ = render(tmp_path / "with", harness_summary=harness)
    page = out.read_text(encoding="utf-8")
    outline = PageOutline(page)
    assert ("harness", "Harness tasks (lm-evaluation-harness)") in outline.sections
    assert "#harness" in outline.contents
    bpb = table_under(page, "curriculab_heldout_d1: bits_per_byte")
    assert bpb[0][:4] == ["D1 ratio", "arm", "schedule", "seeds"]
    by_schedule = {row[2]: row for row in bpb[1:]}
    assert by_schedule["shuffled"][3] == "3" and by_schedule["shuffled"][5] == "baseline"
    assert by_schedule["shuffled"][4].startswith(f"{2.345678 * 1.01:.3f} [")
    assert by_schedule["d1_last"][5] == "+0.500 [+0.500, +0.500]"  # the same change every seed
    words = table_under(page, "curriculab_heldout_d1: word_perplexity")
    assert re.fullmatch(r"\d{3},\d{3} \[\d{3},\d{3}, \d{3},\d{3}\]", words[1][4]), words[1]
    # Absent (data and harness) or empty: no section and no link, and the page still renders.
    study = synthetic_study()
    tables = report_tables(synthetic_tables(study), study)
    for name, extra in (("without", {}), ("empty", {"harness_summary": harness.clear()})):
        out = tmp_path / name / "report.html"
        render_report({**tables, **extra}, study, out)
        outline = PageOutline(out.read_text(encoding="utf-8"))
        ids = [section_id for section_id, _ in outline.sections]
        assert "harness" not in ids and "#harness" not in outline.contents
        assert outline.contents == [f"#{section_id}" for section_id in ids]
    assert "data" not in ids


def test_every_chart_has_a_caption(rendered: tuple[str, dict]) -> None:
    page, _ = rendered
    outline = PageOutline(page)
    assert set(outline.charts) == set(CHART_IDS)
    for chart_id, caption_id in outline.charts.items():
        assert caption_id in outline.captions, chart_id
        caption = outline.captions[caption_id]
        assert 30 < len(caption) < 200 and "\n" not in caption, caption  # one line
    assert len(set(outline.captions.values())) == len(CHART_IDS)  # each says its own thing


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


@pytest.mark.parametrize(
    ("domains", "charts", "heading"),
    [
        ([TARGET, "web"], CHART_IDS, "D2 (web) learning curves"),
        (  # three domains: read domain by domain, a learning-curve chart per domain
            [TARGET, "web", "books"],
            ("chart-barcodes", "chart-curves-web", "chart-curves-books", "chart-final-loss"),
            "books learning curves",
        ),
    ],
)
def test_report_renders_from_collected_runs(
    tmp_path: Path, domains: list[str], charts: tuple[str, ...], heading: str
) -> None:
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
    for chart_id in charts:
        assert f'id="{chart_id}"' in page
    assert heading in page
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
    assert git_commit(Path(__file__).parents[2]) != "unknown"
    out = tmp_path / "report.html"
    render_report(tables, study, out, info)
    page = out.read_text(encoding="utf-8")
    for verdict in tables["verdicts"].iter_rows(named=True):
        assert f"{verdict['hypothesis']} {verdict['verdict']}" in page
    for section, heading in (
        ("verdicts", "Verdicts"),
        ("speed", "Speed of learning and forgetting"),
        ("cost", "Cost"),
        ("provenance", "Provenance"),
    ):
        assert f'<h2 id="{section}">{heading}</h2>' in page
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
    domains = len(synthetic_study()["domains"])
    assert len(rows) - 1 == 2 * len(SCHEDULES) * len(ARMS) * domains  # ratio x ... x domain
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
        "mean lr of its tokens (% of peak)",
    ]
    expected = (
        tables["exposure"]
        .group_by("ratio", "ratio_value", "schedule", "arm", "domain")
        .agg(pl.col("token_share", "lr_weighted_share", "mean_lr_fraction").mean())
        .sort("ratio_value", "schedule", "arm", "domain")
    )
    assert rows[1:] == [
        [r, s, a, d, f"{share:.1%}", f"{weighted:.1%}", f"{mean_lr:.1%}"]
        for r, _, s, a, d, share, weighted, mean_lr in expected.iter_rows()
    ]
    # The point of the section: D1 placed in a cooldown is trained at a low learning rate.
    late = expected.filter(pl.col("schedule") == "d1_last", pl.col("domain") == "code")
    for _, _, _, arm, _, share, weighted, _ in late.iter_rows():
        if arm == "constant":
            assert weighted == pytest.approx(share, abs=0.01)  # only the warmup differs
        else:
            assert weighted < 0.7 * share
