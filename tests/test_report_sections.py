"""Tests for the report's sections in words (curriculab.report.sections), from hand-made
tables: the H2 caution when a schedule never helps."""

from __future__ import annotations

import polars as pl

from curriculab.report.sections import verdict_sentences


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
