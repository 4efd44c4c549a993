"""The report's study list ("What was run": grid, objective, utility weights) and its summary
table of final test losses per (ratio, schedule, arm)."""

from __future__ import annotations

import datetime
import html
from typing import Any

import polars as pl

from curriculab.analysis.controls import MATCH
from curriculab.objective import describe, is_default
from curriculab.report import fmt
from curriculab.report.sections import table
from curriculab.report.words import Words


def _listing(values: list[Any]) -> str:
    """Comma-separated values; str() so float ratios or int seeds from a config also work."""
    return ", ".join(str(value) for value in values)


def _weights(weights: pl.DataFrame | None, words: Words) -> str:
    """The utility weights as one row per ratio and a column per domain (each row sums to 1)."""
    if weights is None or weights.is_empty():
        return ""
    wide = weights.pivot(on="domain", index=["ratio", "ratio_value"], values="weight")
    domains = weights["domain"].unique(maintain_order=True).to_list()
    columns = {"ratio": words.ratio, **{d: f"{d} weight" for d in domains}}
    return "<p>Utility weights of the objective at each ratio (each row sums to 1):</p>" + table(
        wide.sort("ratio_value"), columns
    )


def _cells(cells: pl.DataFrame, grid: int) -> str:
    """Cells with results against the grid; matched controls (analysis.controls) beside it."""
    controls = cells.filter(pl.col("schedule").str.contains(MATCH, literal=True))
    text = (
        f"{cells.height - controls.height} with results of {grid} in the grid "
        "(ratios × schedules × learning-rate arms × seeds)"
    )
    if controls.height:
        names = ", ".join(sorted(set(controls["schedule"])))
        text += (
            f"; and {controls.height} cells of matched controls ({names}: the baseline's order "
            "under a schedule's learning-rate curve)"
        )
    return text


def study_section(
    study: dict[str, Any], cells: pl.DataFrame, words: Words, weights: pl.DataFrame | None = None
) -> str:
    """The "what was run" list: study name, grid, objective, model preset, tokens per cell,
    date; then the utility weights per ratio when the study states a utility."""
    arms = study.get("arms") or {"-": "as in train"}
    grid = len(study["ratios"]) * len(study["schedules"]) * len(arms) * len(study["seeds"])
    tokens = cells.group_by("ratio_value").agg(pl.col("tokens_seen").mean()).sort("ratio_value")
    target, utility = study["target_domain"], study.get("utility")
    d1 = "" if words.named else " (D1)"
    items = {
        "study": study["name"],
        f"target domain{d1}": target,
        "domains": _listing(study["domains"]),
        "objective": study.get("objective") or describe(utility, target),
        f"{words.ratio}s ({words.ratio_unit})": _listing(study["ratios"]),
        "schedules": _listing(study["schedules"]),
        "learning-rate arms": "; ".join(f"{name}: {text}" for name, text in arms.items()),
        "seeds": _listing(study["seeds"]),
        "cells": _cells(cells, grid),
        "model preset": study["model_preset"],
        "training tokens per cell (by ratio)": ", ".join(
            fmt.tokens(value) for value in tokens["tokens_seen"].to_list()
        ),
        "baseline": study.get("baseline", "shuffled"),
        "report date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    body = "".join(
        f"<dt>{html.escape(key)}</dt><dd>{html.escape(str(value))}</dd>"
        for key, value in items.items()
    )
    return f"<dl>{body}</dl>" + ("" if is_default(utility) else _weights(weights, words))


def _mean_std(mean: float | None, std: float | None) -> str:
    """ "mean ± std" in nats/token; std is null (one seed) prints as "n/a" rather than a
    misleading 0."""
    return f"{fmt.loss(mean)} ± {fmt.loss(std)}"


def _html_table(head: list[str], rows: list[list[str]]) -> str:
    """A table of pre-rendered <td> cells; from "seeds" (the 4th column) on, numbers."""
    header = "".join(  # from "seeds" on, the columns hold numbers: right-aligned
        f"<th{' class=num' if i >= 3 else ''}>{html.escape(h)}</th>" for i, h in enumerate(head)
    )
    body = "".join("<tr>" + "".join(cells) + "</tr>" for cells in rows)
    return f"<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"


def _identity(r: dict[str, Any]) -> list[str]:
    return [f"<td>{html.escape(str(r[key]))}</td>" for key in ("ratio", "schedule", "arm")]


def summary_table(summary: pl.DataFrame) -> str:
    """The per-(ratio, schedule, arm) summary of a two-domain study as an HTML table: D1 and
    D2 test loss (mean ± std) beside their unigram references; all text escaped."""
    head = [
        "D1 ratio",
        "schedule",
        "lr arm",
        "seeds",
        "D1 test loss (nats/token)",
        "D1 unigram reference",
        "D2 test loss (nats/token)",
        "D2 unigram reference",
    ]
    rows = [
        [
            *_identity(r),
            f"<td class=num>{fmt.count(r['n_seeds'])}</td>",
            f"<td class=num>{_mean_std(r['d1_test_loss_mean'], r['d1_test_loss_std'])}</td>",
            f"<td class=num>{fmt.loss(r['d1_unigram_loss_mean'])}</td>",
            f"<td class=num>{_mean_std(r['d2_test_loss_mean'], r['d2_test_loss_std'])}</td>",
            f"<td class=num>{fmt.loss(r['d2_unigram_loss_mean'])}</td>",
        ]
        for r in summary.sort("ratio_value", "schedule", "arm").iter_rows(named=True)
    ]
    return _html_table(head, rows)


def named_summary_table(cells: pl.DataFrame, domains: list[str], words: Words) -> str:
    """The summary of a study read domain by domain: per (ratio, schedule, arm), the objective
    and every domain's final test loss, mean ± sample std over seeds (nats/token)."""
    columns = ["objective", *(f"test_loss_{d}" for d in domains)]
    stats = (
        cells.group_by("ratio", "ratio_value", "schedule", "arm")
        .agg(
            pl.len().alias("n_seeds"),
            *[pl.col(c).mean().alias(f"{c}_mean") for c in columns],
            *[pl.when(pl.len() > 1).then(pl.col(c).std()).alias(f"{c}_std") for c in columns],
        )
        .sort("ratio_value", "schedule", "arm")
    )
    head = [words.ratio, "schedule", "lr arm", "seeds", "objective (nats/token)"]
    head += [f"{d} test loss" for d in domains]
    rows = [
        [
            *_identity(r),
            f"<td class=num>{fmt.count(r['n_seeds'])}</td>",
            *[f"<td class=num>{_mean_std(r[f'{c}_mean'], r[f'{c}_std'])}</td>" for c in columns],
        ]
        for r in stats.iter_rows(named=True)
    ]
    return _html_table(head, rows)
