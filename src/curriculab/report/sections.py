"""Report sections in words and tables: verdicts, speed of learning, forgetting, cost."""

from __future__ import annotations

import html
import math
from typing import Any

import polars as pl


def _num(value: float | None, digits: int = 3, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def verdict_sentences(verdicts: pl.DataFrame, baseline: str) -> str:
    """H1 and H2 in plain sentences with their numbers, as an HTML list."""
    if verdicts.is_empty():
        return "<p>No verdicts: the study has no schedule besides the baseline.</p>"
    items = []
    for row in verdicts.iter_rows(named=True):
        interval = (
            f"95% CI {_num(row['ci_low'], signed=True)} to {_num(row['ci_high'], signed=True)}"
        )
        if row["hypothesis"] == "H1":
            text = (
                f"At D1 ratio {row['ratio']}, {row['schedule']} changes the final D1 test loss by "
                f"{_num(row['estimate'], signed=True)} nats/token against {baseline} "
                f"({interval}, {row['n']} seeds, paired by seed): H1 {row['verdict']}."
            )
        else:
            text = (
                f"The benefit of {row['schedule']} over {baseline} (baseline minus schedule, "
                f"nats/token) changes by {_num(row['estimate'], signed=True)} per unit of "
                f"ln(D1 ratio) ({interval}, {row['n']} paired cells): H2 {row['verdict']}."
            )
            text += _h2_caveat(verdicts, row["schedule"])
        items.append(f"<li><b>{html.escape(row['hypothesis'])}</b>: {html.escape(text)}</li>")
    rule = (
        "A verdict is <i>supported</i> when the whole 95% interval lies on the hypothesis' side "
        "of zero, <i>contradicted</i> when it lies on the other side, and <i>inconclusive</i> "
        "otherwise. H1 and H2 are judged for the schedule that places D1 latest."
    )
    return f"<ul>{''.join(items)}</ul><p>{rule}</p>"


def _h2_caveat(verdicts: pl.DataFrame, schedule: str) -> str:
    """H2 speaks of a benefit shrinking; say so when there is no benefit at any ratio."""
    h1 = verdicts.filter((pl.col("hypothesis") == "H1") & (pl.col("schedule") == schedule))
    if h1.height and (h1["estimate"] > 0).all():
        return (
            f" Caution: {schedule} is worse than the baseline at every ratio, so a negative "
            "slope means its harm grows with the amount of D1, not that a benefit shrinks."
        )
    return ""


def table(frame: pl.DataFrame, columns: dict[str, str], digits: int = 3) -> str:
    """An HTML table of `frame` with the given {column: heading}; numbers rounded."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in columns.values())
    rows = []
    for row in frame.iter_rows(named=True):
        cells = []
        for key in columns:
            value = row[key]
            if value is None:
                cells.append("<td class=num>–</td>")
            elif isinstance(value, float):
                cells.append(f"<td class=num>{_num(value, digits)}</td>")
            elif isinstance(value, int):
                cells.append(f"<td class=num>{value:,}</td>")
            else:
                cells.append(f"<td>{html.escape(str(value))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def learning_table(cells: pl.DataFrame) -> str:
    """Speed of learning and forgetting per (ratio, schedule), mean over seeds."""
    summary = (
        cells.group_by("ratio", "ratio_value", "schedule")
        .agg(
            pl.col("d1_auc").mean(),
            pl.col("d1_tokens_to_target").mean(),
            pl.col("d1_tokens_to_target").is_not_null().sum().alias("reached"),
            pl.len().alias("seeds"),
            pl.col("d1_target_loss").first(),
            pl.col("d2_forgetting").mean(),
        )
        .sort("ratio_value", "schedule")
        .with_columns(pl.format("{}/{}", "reached", "seeds").alias("reached_of"))
    )
    return table(
        summary,
        {
            "ratio": "D1 ratio",
            "schedule": "schedule",
            "d1_auc": "D1 loss, area under curve / tokens (nats/token)",
            "d1_target_loss": "target D1 loss",
            "d1_tokens_to_target": "tokens to target (mean)",
            "reached_of": "seeds reaching it",
            "d2_forgetting": "D2 forgetting (nats/token)",
        },
    )


def cost_table(cells: pl.DataFrame) -> tuple[str, dict[str, Any]]:
    """Wall time and throughput per (ratio, schedule), and the study's total compute."""
    per = (
        cells.group_by("ratio", "ratio_value", "schedule")
        .agg(
            pl.col("wall_seconds").mean(),
            pl.col("tokens_per_second").mean(),
            pl.col("tokens_seen").mean(),
        )
        .sort("ratio_value", "schedule")
    )
    totals = {
        "cells": cells.height,
        "training tokens": int(cells["tokens_seen"].sum()),
        "training wall time (s, summed over cells)": float(cells["wall_seconds"].sum()),
    }
    return table(
        per,
        {
            "ratio": "D1 ratio",
            "schedule": "schedule",
            "tokens_seen": "tokens per cell",
            "wall_seconds": "wall s per cell",
            "tokens_per_second": "tokens/s",
        },
        digits=1,
    ), totals
