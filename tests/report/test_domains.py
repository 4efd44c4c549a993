"""The page of a study read domain by domain (three domains and a utility, tests/report_study
`named_study`): domains named and never D1/D2 in charts and verdicts, the objective and its
weights in the study list, every domain's strip and learning curves, the per-domain verdicts
and the fine-tuning section, each in the contents; and the two-domain page without them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest
import vl_convert

from curriculab.report.html import render_report
from tests.support.report_page import (
    PageOutline,
    body_of,
    section_tables,
    table_under,
    visible_text,
)
from tests.support.report_study import named_study, render, report_tables, synthetic_tables

D1_D2 = re.compile(r"\bD[12]\b")
NAMED_CHARTS = (
    "chart-barcodes",
    "chart-curves-code",
    "chart-curves-web",
    "chart-curves-books",
    "chart-final-loss",
    "chart-paired",
    "chart-h2",
)


@pytest.fixture(scope="module")
def named(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, pl.DataFrame]]:
    """The three-domain page with a utility: its text and its tables."""
    out, tables = render(tmp_path_factory.mktemp("named"), study=named_study())
    return out.read_text(encoding="utf-8"), tables


@pytest.fixture(scope="module")
def two_domain(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The default two-domain page."""
    out, _ = render(tmp_path_factory.mktemp("two"))
    return out.read_text(encoding="utf-8")


def chart_specs(page: str) -> dict[str, dict]:
    """{chart div id: Vega-Lite spec} as the page embeds them."""
    body = body_of(page)
    start = body.index("const CHART_SPECS = ") + len("const CHART_SPECS = ")
    return json.loads(body[start : body.index(";\nconst EMBED_OPTIONS")])


def reader_text(page: str) -> str:
    """What a reader sees."""
    return visible_text(page)


def test_domains_are_named_and_never_d1_or_d2(named: tuple[str, dict], two_domain: str) -> None:
    page, tables = named
    specs = chart_specs(page)
    assert set(specs) == set(NAMED_CHARTS)
    assert not D1_D2.search(json.dumps(specs))  # titles, axes, legends, panels
    assert not D1_D2.search(reader_text(page))  # headings, verdicts, tables
    # The check can fail: the two-domain page speaks of D1 and D2 in both.
    assert D1_D2.search(json.dumps(chart_specs(two_domain)))
    assert D1_D2.search(reader_text(two_domain))
    # The verdicts are about the objective, at the target's ratio.
    items = re.findall(r"<li><b>H1, lr [^<]*</b>: (.*?)</li>", body_of(page))
    assert len(items) == tables["verdicts"].filter(pl.col("hypothesis") == "H1").height > 0
    for item in items:
        assert item.startswith("At code ratio ")
        assert "changes the final objective (utility-weighted test loss) by" in item
    titles = {key: json.dumps(spec.get("title")) for key, spec in specs.items()}
    assert "Final objective (utility-weighted test loss) per schedule" in titles["chart-final-loss"]
    assert "web: test loss during training" in titles["chart-curves-web"]
    assert "code (target): test loss during training" in titles["chart-curves-code"]
    assert "the amount of code" in titles["chart-h2"]
    panels = {r["panel"] for r in specs["chart-final-loss"]["data"]["values"]}
    assert panels == {f"code ratio {r} · lr {a}" for r in ("0.05", "0.2")
                      for a in ("constant", "wsd_window")}  # fmt: skip


def test_each_domain_has_its_curves_and_its_strip(named: tuple[str, dict]) -> None:
    page, tables = named
    specs = chart_specs(page)
    curves = tables["curves"]
    for domain in ("code", "web", "books"):
        records = specs[f"chart-curves-{domain}"]["data"]["values"]
        cell = {"schedule": "concentrate_web", "arm": "constant", "ratio": "0.2", "step": 1000}
        (point,) = [r for r in records if all(r[key] == value for key, value in cell.items())]
        expected = curves.filter(domain=domain, **cell)["loss"].mean()
        assert point["loss_mean"] == pytest.approx(expected)  # this domain's loss, unpooled
    barcode = specs["chart-barcodes"]
    blocks = [block for row in barcode["vconcat"] for block in row["hconcat"]]
    assert len(blocks) == 2 * 4  # ratios x schedules
    for block in blocks:
        strips, line = block["vconcat"]
        assert strips["encoding"]["y"]["field"] == "domain"
        assert strips["encoding"]["y"]["sort"] == ["code", "web", "books"]
        assert strips["encoding"]["fill"]["field"] == "share"
        assert line["encoding"]["y"]["field"] == "lr_fraction"
        values = pl.DataFrame(strips["data"]["values"])
        assert values.group_by("bin").agg(pl.col("share").sum())["share"].to_list() == (
            pytest.approx([1.0] * 50)
        )
    (web,) = [b for b in blocks if b["vconcat"][0]["title"] == "concentrate_web · code ratio 0.2"]
    shares = pl.DataFrame(web["vconcat"][0]["data"]["values"]).filter(pl.col("domain") == "web")
    assert shares.sort("bin")["share"].to_list()[-1] == 1.0  # web concentrated at the end
    # The specs compile and render (a wrong encoding would raise here).
    for key in ("chart-barcodes", "chart-curves-books", "chart-paired"):
        assert "<svg" in vl_convert.vegalite_to_svg(specs[key])


def test_fine_tuning_section_ranks_the_domains(named: tuple[str, dict]) -> None:
    page, tables = named
    outline = PageOutline(page)
    ids = [section_id for section_id, _ in outline.sections]
    assert ids[:5] == ["study", "families", "verdicts", "domain-verdicts", "finetune"]
    assert "#finetune" in outline.contents and "#domain-verdicts" in outline.contents
    body = body_of(page)
    section = body[body.index('<h2 id="finetune"') : body.index('<h2 id="references"')]
    groups = re.findall(r"<h3>(code ratio [^<]*)</h3><ul>(.*?)</ul><p>(.*?)</p>", section)
    assert len(groups) == 4  # ratios x arms
    for _, items, order in groups:
        lines = re.findall(r"<li>(.*?)</li>", items)
        assert [line.split(" ")[1] for line in lines] == ["web", "books", "code"]
        assert lines[0].startswith("1. web (concentrate_web: all of it in a final window")
        assert lines[0].endswith(": spread web through training.")
        assert lines[1].endswith(": inconclusive: no call either way.")
        assert lines[2].endswith(": code can be kept for the end (fine-tuning data).")
        assert order == "From must be spread to can be kept for the end: web, books, code. " + (
            "Inconclusive: books."
        )
    calls = table_under(page, "The calls")
    assert calls[0][:4] == ["code ratio", "lr arm", "rank", "concentrated domain"]
    objective = tables["finetune"].filter(pl.col("metric") == "objective")
    assert [row[3] for row in calls[1:]] == objective["domain"].to_list()
    assert [row[-1] for row in calls[1:]] == objective["call"].to_list()
    first = objective.row(0, named=True)
    assert calls[1][7] == (
        f"{first['estimate']:+.3f} [{first['ci_low']:+.3f}, {first['ci_high']:+.3f}]"
    )
    exploratory = table_under(page, "Each domain's own loss")
    assert len(exploratory) - 1 == 3 * 3 * 4  # concentrated x measured domains x (ratio, arm)


def test_per_domain_verdicts_are_listed_with_their_family(named: tuple[str, dict]) -> None:
    page, tables = named
    verdicts = tables["domain_verdicts"]
    assert not verdicts.is_empty()
    rows = table_under(page, "Per-domain verdicts")
    assert rows[0] == [
        "schedule", "lr arm", "code ratio", "domain", "seeds",
        "change in final test loss (95% CI)", "p", "Holm-adjusted p", "sign-flip p",
        "comparability audit", "verdict",
    ]  # fmt: skip
    assert [row[-1] for row in rows[1:]] == verdicts["verdict"].to_list()
    assert f"The {verdicts.height} tests are one family of their own" in page
    # The significant ones in sentences: concentrating code lowers the code loss.
    found = verdicts.filter(pl.col("verdict") != "inconclusive")
    code = found.filter(pl.col("domain") == "code")
    assert set(code["verdict"]) == {"lowered"} and code.height == 4
    section = body_of(page).split('<h2 id="domain-verdicts"')[1].split("<table>")[0]
    assert len(re.findall(r"<li>", section)) == found.height


def test_study_list_states_the_objective_and_its_weights(named: tuple[str, dict]) -> None:
    page, _ = named
    objective = named_study()["objective"]
    assert f"<dt>objective</dt><dd>{objective}</dd>" in page
    assert "<dt>target domain</dt><dd>code</dd>" in page
    assert "<dt>code ratios (code / other train blocks)</dt>" in page
    weights = section_tables(page)["What was run"]
    assert weights == [
        ["code ratio", "code weight", "web weight", "books weight"],
        ["0.05", "0.500", "0.300", "0.200"],
        ["0.2", "0.500", "0.300", "0.200"],
    ]
    data = table_under(page, "Data")  # all three domains' sizes, books' too
    assert [row[3] for row in data[1:7]] == ["1.23M", "270k", "8.77M", "25.8k", "950k", "950"]
    summary = table_under(page, "Summary")
    assert summary[0][3:] == ["seeds", "objective (nats/token)", "code test loss",
                              "web test loss", "books test loss"]  # fmt: skip


def test_the_two_domain_page_has_neither_section(two_domain: str) -> None:
    outline = PageOutline(two_domain)
    ids = [section_id for section_id, _ in outline.sections]
    assert "finetune" not in ids and "domain-verdicts" not in ids
    assert "<dt>target domain (D1)</dt><dd>code</dd>" in two_domain
    assert "<dt>objective</dt><dd>the code test loss (utility 1 on code, 0 elsewhere)</dd>" in (
        two_domain
    )
    assert "weight</th>" not in two_domain  # no utility: no weights table


def test_streams_without_every_domain_share_draw_the_target_strip(tmp_path: Path) -> None:
    study = named_study(seeds=(0, 1))
    tables = report_tables(synthetic_tables(study), study)
    tables["domain_barcodes"] = tables["domain_barcodes"].clear()
    out = tmp_path / "report.html"
    render_report(tables, study, out)
    page = out.read_text(encoding="utf-8")
    outline = PageOutline(page)
    assert outline.captions["caption-barcodes"].startswith("Only code's strip")
    strips = chart_specs(page)["chart-barcodes"]["vconcat"][0]["hconcat"][0]["vconcat"][0]
    assert {r["domain"] for r in strips["data"]["values"]} == {"code"}


def test_the_speed_table_gives_the_objectives_area_under_the_curve(
    named: tuple[str, dict], two_domain: str
) -> None:
    page, tables = named
    assert "objective_auc" in tables["cells"].columns
    assert "objective, area under curve / tokens (nats/token)" in visible_text(page)
    assert "objective, area under curve" not in visible_text(two_domain)


def test_three_domains_without_a_utility_call_the_objective_the_target_loss() -> None:
    from curriculab.report.words import words_for

    study = {"domains": ["books", "code", "web"], "target_domain": "code", "utility": None}
    words = words_for(study)
    assert words.named and words.measure == "final objective (code test loss)"
    assert words.placed == "code"
    weighted = words_for({**study, "utility": {"weights": {"code": 1.0, "web": 1.0}}})
    assert weighted.measure == "final objective (utility-weighted test loss)"
    assert weighted.placed == "the utility"
    assert not words_for({**study, "domains": ["code", "web"]}).named
