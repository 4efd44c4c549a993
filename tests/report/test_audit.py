"""Tests for the report's comparability audit (curriculab.report.audit and the audit lines beside
every verdict): a comparison that differs from its control in more than order is stated without
a verdict, every audited comparison is listed, matched controls stay out of the charts and are
named in the tables, the families of tests are stated, and a verdict family changed after
results existed is flagged at the top of the page.

The two-domain synthetic study (tests/report_study.py) gains a matched control under the
wsd_window arm, "shuffled@d1_last" (the baseline's cells, 0.03 nats/token worse), and an audit
table made by hand: under wsd_window, d1_last against the baseline differs in its learning-rate
curve too, and against its matched control at ratio 0.2 in code tokens; so its H1 at 0.2 and
its H2 there earn no verdict.
"""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from curriculab.analysis.audit import COMPARISON_SCHEMA
from curriculab.analysis.domains import DOMAIN_VERDICT_SCHEMA
from curriculab.analysis.finetune import FINETUNE_SCHEMA
from curriculab.report.audit import families_section
from curriculab.report.domains import domain_verdict_section
from curriculab.report.finetune import finetune_section
from curriculab.report.html import render_report
from curriculab.report.words import named_words, schedule_label
from tests.support.report_page import body_of, table_under
from tests.support.report_study import report_tables, synthetic_study, synthetic_tables

CONTROL = "shuffled@d1_last"
LR = "order; LR schedule (decay from 95% vs 80%)"
TOKENS = "order; code tokens +57%"
VERDICT_WORDS = ("supported", "contradicted", "inconclusive", "Holm-adjusted")


def _with_control(collected: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """Every table with the baseline's wsd_window cells copied as the matched control's, their
    final losses 0.03 nats/token higher (its learning-rate curve's own effect)."""
    out = {}
    for name, frame in collected.items():
        base = frame.filter((pl.col("schedule") == "shuffled") & (pl.col("arm") == "wsd_window"))
        copy = base.with_columns(pl.lit(CONTROL).alias("schedule"))
        if name == "cells":
            losses = [c for c in copy.columns if c.endswith("test_loss") or "test_loss_" in c]
            copy = copy.with_columns(pl.col(c) + 0.03 for c in losses)
        out[name] = pl.concat([frame, copy])
    return out


def _comparisons(ratios: list[str]) -> pl.DataFrame:
    """The audit's comparisons table (analysis.audit.COMPARISON_SCHEMA), made by hand."""
    rows = []
    for ratio in ratios:
        for schedule, control, arm, kind, differs in (
            ("d1_first", "shuffled", "constant", "baseline", "order only"),
            ("d1_last", "shuffled", "constant", "baseline", "order only"),
            ("d1_first", "shuffled", "wsd_window", "baseline", "order only"),
            ("d1_last", "shuffled", "wsd_window", "baseline", LR),
            ("d1_last", CONTROL, "wsd_window", "matched",
             "order only" if ratio == ratios[0] else TOKENS),
            (CONTROL, "shuffled", "wsd_window", "lr_only", "LR schedule (decay from 95% vs 80%)"),
        ):  # fmt: skip
            rows.append(
                {
                    "ratio": ratio,
                    "ratio_value": float(ratio),
                    "schedule": schedule,
                    "control": control,
                    "arm": arm,
                    "kind": kind,
                    "n_pairs": 3,
                    "factors": "order" if differs == "order only" else "order,lr",
                    "order_only": differs == "order only",
                    "differs_in": differs,
                    "exposure": "code lr exposure -41%" if "LR" in differs else "",
                }
            )
    return pl.DataFrame(rows, schema=COMPARISON_SCHEMA)


def _registration(changed: bool) -> dict:
    """The registration record: registered before any cell, changed (or not) after 7."""
    first = {"sha256": "1" * 64, "time": "2025-01-02T03:04:05+00:00", "cells_existing": 0}
    later = {"sha256": "2" * 64, "time": "2025-01-03T00:00:00+00:00", "cells_existing": 7}
    history = [first, later] if changed else [first]
    return {
        "sha256": history[-1]["sha256"],
        "spec": {"baseline": "shuffled"},
        "history": history,
        "changed_after_results": {"first": first, "changed": later, "now": later}
        if changed
        else None,
    }


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict, dict]:
    """The audited synthetic report with a changed registration: page, tables and specs."""
    study = synthetic_study()
    collected = _with_control(synthetic_tables(study))
    tables = report_tables(collected, study, _comparisons(study["ratios"]))
    out = tmp_path_factory.mktemp("audit") / "report.html"
    render_report(tables, study, out, {"git commit": "x"}, registration=_registration(True))
    page = out.read_text(encoding="utf-8")
    specs = json.loads(re.search(r"const CHART_SPECS = (.*);\n", page).group(1))
    return page, tables, specs


def _verdict_items(page: str) -> list[tuple[str, str]]:
    """(head, text) of every item of the verdicts section."""
    section = body_of(page).split('<h2 id="verdicts"')[1].split("<h2")[0]
    return re.findall(r"<li><b>([^<]*)</b>: (.*?)</li>", section)


def test_a_comparison_of_more_than_order_is_stated_without_a_verdict(audited) -> None:
    page, tables, _ = audited
    verdicts = tables["verdicts"]
    unjudged = verdicts.filter(~pl.col("judged"))
    assert set(unjudged["verdict"]) == {"not judged"} and unjudged.height == 2  # H1 at 0.2, H2
    items = _verdict_items(page)
    assert len(items) == verdicts.height
    for row in verdicts.iter_rows(named=True):
        mine = [
            text
            for head, text in items
            if head.endswith(f"lr {row['arm']}")
            and (f"ratio {row['ratio']}," in text) == (row["hypothesis"] == "H1")
        ]
        (text,) = [t for t in mine if f"{row['estimate']:+.3f}" in t]
        assert f"{row['ci_low']:+.3f} to {row['ci_high']:+.3f}" in text
        assert html.escape(f"vs {row['control']}") in text
        if row["judged"]:
            assert "differs in: order only" in text and f"{row['verdict']}." in text
        else:
            assert html.escape(f"no verdict: differs in {row['differs_in']}") in text
            assert not any(word in text for word in VERDICT_WORDS), text
    heads = Counter(head for head, _ in items)
    assert heads["No verdict, lr wsd_window"] == 2 and heads["H1, lr wsd_window"] == 1
    matched = html.escape(f"vs {CONTROL}, the baseline under d1_last's learning-rate curve")
    assert matched in page
    judged = verdicts["judged"].sum()
    assert f"The {judged} tests above with a verdict are one family" in page


def test_the_audit_section_lists_every_comparison(audited) -> None:
    page, tables, _ = audited
    comparisons = tables["comparisons"]
    rows = table_under(page, "Comparability audit")
    assert rows[0][6:] == [
        "differs in", "lr exposure (reported, not a confound)",
        "change in the D1 loss, schedule minus control (95% CI, nats/token)",
        "eligible for a verdict",
    ]  # fmt: skip
    expected = Counter(
        (r["arm"], schedule_label(r["schedule"]), schedule_label(r["control"]), r["ratio"],
         r["differs_in"], "yes" if r["order_only"] else "no", f"{r['estimate']:+.3f}")
        for r in comparisons.iter_rows(named=True)
    )  # fmt: skip
    shown = Counter((r[0], r[1], r[2], r[4], r[6], r[9], r[8].split(" ")[0]) for r in rows[1:])
    assert shown == expected
    assert "shuffled at d1_last's learning rate (matched control)" in {r[1] for r in rows}
    eligible = int(comparisons["order_only"].sum())
    assert f"{comparisons.height} comparisons" in page and f"{eligible} differ in order" in page


def test_matched_controls_are_named_in_tables_and_left_out_of_charts(audited) -> None:
    page, _, specs = audited
    assert CONTROL not in json.dumps(specs)
    label = "shuffled at d1_last's learning rate (matched control)"
    summary = table_under(page, "Summary")
    assert sum(row[1] == label for row in summary) == 2  # one per ratio, under wsd_window
    assert "and 6 cells of matched controls (shuffled@d1_last" in page


def test_families_are_stated_when_they_have_tests(audited) -> None:
    page, _, _ = audited
    section = body_of(page).split('<h2 id="families"')[1].split("<h2")[0]
    items = re.findall(r"<li>(.*?)</li>", section)
    assert len(items) == 1 and items[0].startswith("H1/H2 verdicts (4 tests; 2 more")
    utility = pl.DataFrame({"ratio": ["0.05"] * 3, "family_size": [3] * 3})
    selection, ladder = {"tests": [{}] * 9}, {"check_tests": [{}] * 6}
    text = families_section({"utility": utility, "verdicts": pl.DataFrame()}, selection, ladder, {})
    found = re.findall(r"<li>(\w+)", text)
    assert found == ["Utility", "Selection", "Ladder", "Design"]
    for counted in ("Utility by removal (3 tests)", "Selection × placement (9 tests",
                    "Ladder check (6 tests"):  # fmt: skip
        assert counted in text
    assert "Each family is controlled separately" in text and "2/2<sup>n</sup>" in text


def test_a_changed_family_is_flagged_at_the_top(audited, tmp_path: Path) -> None:
    page, tables, _ = audited
    body = body_of(page)
    assert body.index('id="registration-changed"') < body.index('<nav class="toc"')
    assert (
        "changed after 7 cells had finished: first registered 111111111111 at "
        "2025-01-02T03:04:05+00:00, changed to 222222222222 at 2025-01-03T00:00:00+00:00 with 7 "
        "cells existing; now 222222222222."
    ) in body
    out = tmp_path / "report.html"
    render_report(tables, synthetic_study(), out, registration=_registration(False))
    unchanged = body_of(out.read_text(encoding="utf-8"))
    assert "registration-changed" not in unchanged and "Warning: The verdict" not in unchanged
    assert "registered as 111111111111 at 2025-01-02T03:04:05+00:00 before any cell" in unchanged


def _domain_row(domain: str, verdict: str, judged: bool, differs: str) -> dict:
    return {
        "schedule": "d1_last", "arm": "wsd_window", "ratio": "0.2", "ratio_value": 0.2,
        "domain": domain, "metric": f"test_loss_{domain}", "estimate": -0.1, "ci_low": -0.2,
        "ci_high": -0.05, "n": 3, "p_value": 0.01, "p_adjusted": 0.02 if judged else None,
        "family_size": 1, "verdict": verdict, "correction": "holm", "control": CONTROL,
        "judged": judged, "differs_in": differs,
    }  # fmt: skip


def test_domain_verdicts_without_a_verdict_say_what_they_differ_in() -> None:
    schema = {**DOMAIN_VERDICT_SCHEMA, "differs_in": pl.String}
    rows = [_domain_row("code", "lowered", True, "order only"),
            _domain_row("web", "not judged", False, LR)]  # fmt: skip
    text = domain_verdict_section(pl.DataFrame(rows, schema=schema), "shuffled", named_words(
        "code", None))  # fmt: skip
    table = re.findall(r"<tr>(.*?)</tr>", text)
    (web,) = [row for row in table if ">web<" in row]
    assert html.escape(f"no verdict: differs in {LR}") in web and ">lowered<" not in web
    (code,) = [row for row in table if ">code<" in row]
    assert ">lowered<" in code and "differs in: order only" in code
    assert "1 test(s) have no verdict" in text
    # Tables made before the audit (no control, judged, differs_in): every row judged.
    older = pl.DataFrame(rows[:1], schema=schema).drop("control", "judged", "differs_in")
    assert "vs shuffled" in domain_verdict_section(older, "shuffled", named_words("code", None))


def test_a_fine_tuning_comparison_of_more_than_order_makes_no_call() -> None:
    def row(domain: str, call: str, judged: bool, differs: str) -> dict:
        return {
            "domain": domain, "schedule": f"concentrate_{domain}", "window": None,
            "ratio": "0.2", "ratio_value": 0.2, "arm": "wsd_window", "metric": "objective",
            "estimate": 0.1, "ci_low": 0.05, "ci_high": 0.15, "n": 3, "p_value": 0.01,
            "p_adjusted": 0.02 if judged else None, "family_size": 1, "call": call,
            "rank": 1 if judged else None, "control": "shuffled", "judged": judged,
            "differs_in": differs,
        }  # fmt: skip

    rows = [row("web", "spread through training", True, "order only"),
            row("code", "not judged", False, LR)]  # fmt: skip
    frame = pl.DataFrame(rows, schema={**FINETUNE_SCHEMA, "differs_in": pl.String})
    text = finetune_section(frame, "shuffled", named_words("code", None))
    (code,) = [item for item in re.findall(r"<li>(.*?)</li>", text) if " code (" in item]
    assert code.endswith(html.escape(f"no call: differs in {LR}."))
    assert "kept for the end" not in code and "inconclusive" not in code
    assert "No call (not a comparison of order alone): code." in text
    assert "From must be spread to can be kept for the end: web." in text
