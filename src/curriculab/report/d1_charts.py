"""The chart sections of a two-domain study (D1 and the pooled D2), in page order: the
counterpart of report.domains.named_charts for a study read as D1 against D2."""

from __future__ import annotations

from typing import Any

import polars as pl

from curriculab.report.charts import (
    barcode_chart,
    benefit_chart,
    final_loss_chart,
    learning_curve_chart,
    paired_heatmap,
)
from curriculab.report.domains import ChartEntry


def d1_charts(tables: dict[str, pl.DataFrame], study: dict[str, Any]) -> list[ChartEntry]:
    """The chart sections of a two-domain study (D1 and the pooled D2), in page order:
    (section id, heading, caption, chart)."""
    target, baseline = study["target_domain"], study.get("baseline", "shuffled")
    others = ", ".join(d for d in study["domains"] if d != target)
    curves, cells = tables["curves"], tables["cells"]
    charts = [  # (section id, heading, caption, chart)
        (
            "barcodes",
            "The schedules: D1 share and learning rate over training",
            "Read each strip left to right: yellow is where D1 sits; the line under it is the "
            "learning rate D1 meets there.",
            barcode_chart(tables["barcodes"], tables["lr_profile"]),
        ),
        (
            "d1-curves",
            f"D1 ({target}) learning curves",
            f"Lower is better; in each panel compare every schedule's line with {baseline}'s, "
            "and all of them with the dashed unigram reference.",
            learning_curve_chart(curves, f"D1 ({target})", True),
        ),
        (
            "d2-curves",
            f"D2 ({others}) learning curves",
            "Lower is better; a line that rises late in training is D2 being forgotten while "
            "D1 takes over the stream.",
            learning_curve_chart(curves, f"D2 ({others})", False),
        ),
        (
            "final-loss",
            "Final D1 test loss",
            f"Lower is better; compare each schedule's tick with {baseline}'s in the same panel "
            "(each panel has its own scale); the dots show the spread over seeds.",
            final_loss_chart(cells),
        ),
    ]
    if not tables["paired"].is_empty():
        charts += [
            (
                "paired",
                "Benefit over the baseline",
                f"Blue: the schedule lowers final D1 loss against {baseline} at that ratio, "
                "red: it raises it; look for intervals that exclude 0 (exploratory).",
                paired_heatmap(tables["paired"]),
            ),
            (
                "h2",
                "H2: benefit against the amount of D1",
                f"Above 0: better than {baseline}; H2 expects each line to fall as the D1 "
                "ratio grows (the benefit shrinks with more D1).",
                benefit_chart(tables["paired"]),
            ),
        ]
    return charts
