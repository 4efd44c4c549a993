"""Tests for the report's sections in words (curriculab.report.sections, .cost, .utility), from
hand-made tables: the H2 caution when a schedule never helps; the cost of a study with trunks,
with prefixes shared between cells and with nothing shared; domain utility by removal."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from curriculab.analysis.utility import UTILITY_SCHEMA
from curriculab.report.cost import cost_section
from curriculab.report.sections import verdict_sentences
from curriculab.report.utility import utility_section
from tests.support.report_page import PageOutline, section_tables
from tests.support.report_study import render


def test_h2_sentence_warns_when_there_is_no_benefit_at_any_ratio() -> None:
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


def cell(schedule: str, arm: str, seed: int, inherited: int = 0, source: str | None = None) -> dict:
    """A cells-table row of the cost columns: 10,000 tokens seen, 1 GFLOP a token, 20 s."""
    return {
        "ratio": "0.15",
        "ratio_value": 0.15,
        "schedule": schedule,
        "arm": arm,
        "seed": seed,
        "tokens_seen": 10_000,
        "wall_seconds": 20.0,
        "tokens_per_second": 500.0,
        "flops_per_token": 1e9,
        "inherited_tokens": inherited,
        "trained_tokens": 10_000 - inherited,
        "inherited_source": source,
    }


def cost_tables(body: str) -> dict[str, list[list[str]]]:
    """The cost section's tables by heading ("Cost", then its <h3>s), as cell texts."""
    return section_tables(f"<h1>report</h1><h2>Cost</h2>{body}")


def test_h2_of_a_one_ratio_study_is_called_not_testable() -> None:
    nan = float("nan")
    row = {"ratio": "all", "ci_low": nan, "ci_high": nan, "p_value": nan, "p_adjusted": nan}
    h1 = {**row, "hypothesis": "H1", "ratio": "0.15", "estimate": 0.5, "n": 3}
    h1 |= {"ci_low": 0.4, "ci_high": 0.6, "p_value": 0.01, "p_adjusted": 0.01}
    h2 = {**row, "hypothesis": "H2", "estimate": nan, "n": 0}
    rows = [{"schedule": "late", "arm": "wsd", "family_size": 1, **r} for r in (h1, h2)]
    text = verdict_sentences(pl.DataFrame([{**r, "verdict": "inconclusive"} for r in rows]), "s")
    assert "H2 needs every seed at two or more D1 ratio values" in text
    assert "n/a" not in text and "over 0 seeds" not in text
    assert "by +0.500 nats/token" in text  # H1 is still stated


def test_cost_counts_trunks_once_against_training_every_cell_alone() -> None:
    # Per seed: shuffled from step 0; late_a and late_b resume from one trunk checkpoint at
    # 6,000 tokens, which one trunk segment (0 -> step 60) trained once.
    cells = pl.DataFrame(
        [cell("shuffled", "wsd", s) for s in (0, 1)]
        + [cell(late, "wsd", s, 6000, "trunk") for late in ("late_a", "late_b") for s in (0, 1)]
    )
    trunks = pl.DataFrame(
        {
            "ratio": ["0.15"] * 2,
            "ratio_value": [0.15] * 2,
            "trunk": ["main"] * 2,
            "arm": ["wsd"] * 2,
            "seed": [0, 1],
            "step": [60, 60],
            "parent": [0, 0],
            "tokens_trained": [6000, 6000],
            "flops_per_token": [1e9, 1e9],
            "wall_seconds": [12.0, 12.0],
        }
    )
    body = cost_section(cells, trunks)
    # Alone: 6 cells x 10,000 = 60k tokens. The study: 2 x 10,000 + 4 x 4,000 by the cells and
    # 2 x 6,000 by the trunk = 48k; saved 12k, 20%. 1 GFLOP a token.
    assert (
        "<p>This study trained 48k tokens (48 TFLOP); training the same 6 cells independently "
        "from step 0 would have trained 60k tokens (60 TFLOP): 20.0% saved by sharing trunks.</p>"
    ) in body
    tables = cost_tables(body)
    totals = {row[0]: row[1:] for row in tables["Cost"][1:]}
    own = totals["cells (what each trained itself)"]
    assert own == ["6", "36k", "36 TFLOP", "60.0%", "2 min 0 s"]
    assert totals["trunk segments"] == ["2", "12k", "12 TFLOP", "20.0%", "24 s"]
    assert totals["this study"] == ["8", "48k", "48 TFLOP", "80.0%", "2 min 24 s"]
    assert totals["every cell trained alone from step 0"] == ["6", "60k", "60 TFLOP", "100.0%", "–"]
    assert totals["saved by sharing"] == ["–", "12k", "12 TFLOP", "20.0%", "–"]
    per_cell = {tuple(row[:3]): row[3:8] for row in tables["Per cell (mean over seeds)"][1:]}
    assert per_cell[("0.15", "late_a", "wsd")] == ["4k", "6k", "4 TFLOP", "6 TFLOP", "trunk"]
    step0 = per_cell[("0.15", "shuffled", "wsd")]
    assert step0 == ["10k", "0", "10 TFLOP", "0 FLOP", "none (step 0)"]
    segments = tables["Trunk segments"]
    assert segments[0][4:8] == ["from step", "to step", "tokens trained", "FLOPs"]
    assert [row[4:8] for row in segments[1:]] == [["0", "60", "6k", "6 TFLOP"]] * 2


def test_cost_of_a_study_without_trunks_counts_prefixes_shared_between_cells() -> None:
    from curriculab.analysis.trunk_segments import collect_trunks

    # The wsd arm of each seed resumes from its constant arm's snapshot at 8,000 tokens.
    cells = pl.DataFrame(
        [cell("shuffled", "constant", s) for s in (0, 1)]
        + [cell("shuffled", "wsd", s, 8000, "cell") for s in (0, 1)]
    )
    for trunks in (None, collect_trunks([])):  # no trunks: the aggregate step's empty table
        body = cost_section(cells, trunks)
        # Alone: 4 x 10,000 = 40k. The study: 2 x 10,000 + 2 x 2,000 = 24k; saved 16k, 40%.
        assert (
            "would have trained 40k tokens (40 TFLOP): 40.0% saved by sharing prefixes between "
            "cells.</p>"
        ) in body
        assert body.startswith("<p>This study trained 24k tokens (24 TFLOP);")
        tables = cost_tables(body)
        assert [row[0] for row in tables["Cost"][1:]] == [
            "this study",
            "every cell trained alone from step 0",
            "saved by sharing",
        ]
        assert tables["Cost"][3][1:5] == ["–", "16k", "16 TFLOP", "40.0%"]
        assert "Trunk segments" not in tables


def test_cost_of_a_study_that_shared_nothing() -> None:
    cells = pl.DataFrame([cell("shuffled", arm, s) for arm in ("constant", "wsd") for s in (0, 1)])
    body = cost_section(cells)
    assert body.startswith(
        "<p>This study trained 40k tokens (40 TFLOP) in 4 cells, each from step 0: no training "
        "was shared.</p>"
    )
    assert cost_tables(body)["Cost"][3][1:5] == ["–", "0", "0 FLOP", "0.0%"]
    # A cells table aggregated before trunks has no cost columns: from step 0, FLOPs unknown.
    old = cells.drop("flops_per_token", "inherited_tokens", "trained_tokens", "inherited_source")
    body = cost_section(old)
    assert body.startswith("<p>This study trained 40k tokens in 4 cells, each from step 0")
    assert cost_tables(body)["Cost"][1][1:5] == ["4", "40k", "–", "100.0%"]


def utility_rows() -> pl.DataFrame:
    """Two rows of a utility table: the objective with an interval, web from one seed pair."""
    base = {"ratio": "0.15", "ratio_value": 0.15, "arm": "wsd", "schedule": "window_no_web"}
    base |= {"reference": "window", "removed": "web"}
    return pl.DataFrame(
        [
            base | {"measured": "code", "objective": True, "n_pairs": 30, "reference_loss": 3.1234,
                    "change": 0.05, "ci_low": 0.046, "ci_high": 0.054, "p_value": 1e-6,
                    "p_adjusted": 2e-6, "family_size": 1,
                    "verdict": "removing web raises code's loss"},
            base | {"measured": "web", "objective": False, "n_pairs": 1, "reference_loss": 3.5,
                    "change": 0.1, "ci_low": None, "ci_high": None, "p_value": None,
                    "p_adjusted": None, "family_size": 1,
                    "verdict": "too few seeds for an interval"},
        ],
        schema=UTILITY_SCHEMA,
    )  # fmt: skip


def test_utility_section_states_each_change_with_its_interval() -> None:
    body = utility_section(utility_rows())
    header, code, web = section_tables(f"<h1>r</h1><h2>Utility</h2>{body}")["Utility"]
    assert header[5:] == [
        "measured domain",
        "seed pairs",
        "reference loss (nats/token)",
        "change in final test loss (95% CI, unadjusted)",
        "Holm-adjusted p",
        "reading",
    ]
    assert code[5:9] == ["code (objective)", "30", "3.123", "+0.050 [+0.046, +0.054]"]
    assert code[10] == "removing web raises code's loss"
    assert web[5:9] == ["web", "1", "3.500", "+0.100"]  # one pair: no interval to show
    caption = body[: body.index("<table>")]
    assert "positive means the loss rises without the removed domain" in " ".join(caption.split())
    assert "separate from the H1/H2 verdicts" in " ".join(caption.split())
    assert "one Holm family of their own (1 tests)" in " ".join(caption.split())


def test_utility_section_sits_between_speed_and_cost_only_with_rows(tmp_path: Path) -> None:
    out, _ = render(tmp_path / "with", utility=utility_rows())
    ids = [section_id for section_id, _ in PageOutline(out.read_text("utf-8")).sections]
    assert ids.index("speed") + 1 == ids.index("utility") == ids.index("cost") - 1
    out, _ = render(tmp_path / "without", utility=utility_rows().clear())
    ids = [section_id for section_id, _ in PageOutline(out.read_text("utf-8")).sections]
    assert "utility" not in ids and ids.index("speed") + 1 == ids.index("cost")
