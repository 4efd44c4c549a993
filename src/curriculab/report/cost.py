"""The report's cost section: the tokens and FLOPs this study trained, against training every
cell independently from step 0, then per cell and per trunk segment.

A cell that resumes from a trunk checkpoint or from another cell's snapshot inherits the
prefix's tokens (cells: `inherited_tokens`) and trains only the rest (`trained_tokens`); the
trunk segments trained the inherited tokens once (trunks: `tokens_trained`). So the study
trained its cells' trained_tokens plus its trunk segments' tokens_trained, and training every
cell alone would have trained the sum of its cells' tokens_seen. FLOPs are tokens times each
run's training FLOPs per token (forward and backward).
"""

from __future__ import annotations

import html
from typing import Any

import polars as pl

from curriculab.report import fmt
from curriculab.report.sections import table

SHARED = {"trunk": "trunks", "cell": "prefixes between cells"}  # inherited_source -> words


def _with_flops(cells: pl.DataFrame) -> pl.DataFrame:
    """cells with trained, inherited and from-step-0 FLOPs. A cells table aggregated before
    trunks has no inherited_* columns: its cells read as trained from step 0, FLOPs unknown."""
    defaults = {
        "inherited_tokens": pl.lit(0, pl.Int64),
        "trained_tokens": pl.col("tokens_seen"),
        "inherited_source": pl.lit(None, pl.String),
        "flops_per_token": pl.lit(None, pl.Float64),
    }
    cells = cells.with_columns(e.alias(k) for k, e in defaults.items() if k not in cells.columns)
    per_token = pl.col("flops_per_token")
    return cells.with_columns(
        (pl.col("trained_tokens") * per_token).alias("trained_flops"),
        (pl.col("inherited_tokens") * per_token).alias("inherited_flops"),
        (pl.col("tokens_seen") * per_token).alias("alone_flops"),
    )


def _total(values: pl.Series) -> float | None:
    """The sum, or None when any value is unknown: a partial sum would read as the total."""
    return None if values.null_count() else float(values.sum())


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _sum_known(rows: list[dict], key: str) -> float | None:
    return None if any(row[key] is None for row in rows) else sum(row[key] for row in rows)


def _totals(cells: pl.DataFrame, trunks: pl.DataFrame) -> dict[str, dict]:
    """Rows of the totals table by role: what the cells ("cells") and trunk segments
    ("trunks") trained, both only when there are trunks, the "study" (their sum), training
    every cell "alone" from step 0, and what sharing "saved"; share = tokens / tokens alone."""
    parts = {
        "cells": ("cells (what each trained itself)", cells, "trained_tokens", "trained_flops")
    }
    if not trunks.is_empty():
        parts["trunks"] = ("trunk segments", trunks, "tokens_trained", "flops")
    rows = {
        role: {
            "what": what,
            "runs": frame.height,
            "tokens": int(frame[tokens].sum()),
            "flops": _total(frame[flops]),
            "seconds": _total(frame["wall_seconds"]),
        }
        for role, (what, frame, tokens, flops) in parts.items()
    }
    trained = list(rows.values())
    rows["study"] = {
        "what": "this study",
        "runs": sum(row["runs"] for row in trained),
        "tokens": sum(row["tokens"] for row in trained),
        "flops": _sum_known(trained, "flops"),
        "seconds": _sum_known(trained, "seconds"),
    }
    alone = {
        "what": "every cell trained alone from step 0",
        "runs": cells.height,
        "tokens": int(cells["tokens_seen"].sum()),
        "flops": _total(cells["alone_flops"]),
        "seconds": None,  # not measured: those runs did not happen
    }
    rows["alone"] = alone
    rows["saved"] = {
        "what": "saved by sharing",
        "runs": None,
        "tokens": alone["tokens"] - rows["study"]["tokens"],
        "flops": _minus(alone["flops"], rows["study"]["flops"]),
        "seconds": None,
    }
    for row in rows.values():
        row["share"] = row["tokens"] / alone["tokens"] if alone["tokens"] else None
    if trunks.is_empty():
        del rows["cells"]  # the study is its cells: one row says it
    return rows


def _amount(tokens: float, flops: float | None) -> str:
    """ "1.23M tokens (4.5 PFLOP)"; the FLOPs are left out where unknown."""
    return f"{fmt.tokens(tokens)} tokens" + (f" ({fmt.flops(flops)})" if flops is not None else "")


def _sentence(totals: dict[str, dict], cells: pl.DataFrame, trunks: pl.DataFrame) -> str:
    """The section's first line: what the study trained against training every cell alone."""
    study, alone, saved = totals["study"], totals["alone"], totals["saved"]
    head = f"This study trained {_amount(study['tokens'], study['flops'])}"
    if saved["tokens"] == 0 and trunks.is_empty():
        return f"<p>{head} in {cells.height} cells, each from step 0: no training was shared.</p>"
    sources = set(cells["inherited_source"].drop_nulls().to_list())
    sources |= set() if trunks.is_empty() else {"trunk"}
    shared = " and ".join(words for source, words in SHARED.items() if source in sources)
    share = fmt.NA if saved["share"] is None else fmt.percent(abs(saved["share"]))
    outcome = (
        f"{share} saved by sharing {shared}"
        if saved["tokens"] >= 0
        else f"sharing {shared} cost {share} more (trunk segments that no cell resumed from)"
    )
    text = (
        f"{head}; training the same {cells.height} cells independently from step 0 would have "
        f"trained {_amount(alone['tokens'], alone['flops'])}: {outcome}."
    )
    return f"<p>{html.escape(text)}</p>"


# The totals table's columns: {key: (heading, dtype)}; share is of the tokens.
TOTALS: dict[str, tuple[str, type[pl.DataType]]] = {
    "what": ("", pl.String),
    "runs": ("runs", pl.Int64),
    "tokens": ("tokens trained", pl.Int64),
    "flops": ("FLOPs", pl.Float64),
    "share": ("share of training every cell alone", pl.Float64),
    "seconds": ("wall time", pl.Float64),
}
FORMATS = {
    "tokens": fmt.tokens,
    "flops": fmt.flops,
    "seconds": fmt.duration,
    "share": fmt.percent,
    "trained_tokens": fmt.tokens,
    "inherited_tokens": fmt.tokens,
    "trained_flops": fmt.flops,
    "inherited_flops": fmt.flops,
    "wall_seconds": fmt.duration,
    "tokens_per_second": fmt.tokens,
    "tokens_trained": fmt.tokens,
}


def _per_cell(cells: pl.DataFrame, ratio: str) -> str:
    """Per (ratio, schedule, arm), mean over seeds: what a cell trained itself and inherited."""
    means = ("trained_tokens", "inherited_tokens", "trained_flops", "inherited_flops")
    per = (
        cells.group_by("ratio", "ratio_value", "schedule", "arm")
        .agg(
            pl.col(*means, "wall_seconds", "tokens_per_second").mean(),
            pl.col("inherited_source").drop_nulls().unique().sort().str.join(", ").alias("source"),
        )
        .with_columns(pl.col("source").replace("", "none (step 0)"))
        .sort("ratio_value", "schedule", "arm")
    )
    columns = {
        "ratio": ratio,
        "schedule": "schedule",
        "arm": "lr arm",
        "trained_tokens": "tokens trained itself",
        "inherited_tokens": "tokens inherited",
        "trained_flops": "FLOPs trained itself",
        "inherited_flops": "FLOPs inherited",
        "source": "inherited from",
        "wall_seconds": "wall time",
        "tokens_per_second": "tokens/s",
    }
    return table(per, columns, FORMATS)


def _trunk_segments(trunks: pl.DataFrame, ratio: str) -> str:
    """One row per trunk segment: where it resumed from, where it ends, what it trained."""
    columns = {
        "ratio": ratio,
        "trunk": "trunk",
        "arm": "lr arm",
        "seed": "seed",
        "parent": "from step",
        "step": "to step",
        "tokens_trained": "tokens trained",
        "flops": "FLOPs",
        "wall_seconds": "wall time",
    }
    return table(trunks.sort("ratio_value", "trunk", "arm", "seed", "step"), columns, FORMATS)


def planned_sentence(planned: dict[str, Any], cells: pl.DataFrame) -> str:
    """Planned before the run (curriculab.cost.plan) against what the cells recorded."""
    spent = float((cells["tokens_seen"] * cells["flops_per_token"]).sum())
    share = f" ({spent / planned['training_flops']:.0%} of it)" if planned["training_flops"] else ""
    gpus = ", ".join(
        f"{gpu} {fmt.duration(hours * 3600)}" for gpu, hours in planned["gpu_hours"].items()
    )
    return (
        f"<p>Planned before the run (<code>curriculab plan</code>): {planned['cells']} cells, "
        f"{fmt.tokens(planned['tokens'])} tokens, "
        f"{fmt.flops(planned['training_flops'])} of training "
        f"(on one GPU at {planned['mfu']:.0%} MFU: {gpus}). Recorded by the cells: "
        f"{fmt.flops(spent)}{share}; shared prefixes and trunks train part of it once.</p>"
    )


def cost_section(
    cells: pl.DataFrame,
    trunks: pl.DataFrame | None = None,
    ratio: str = "D1 ratio",
    planned: dict[str, Any] | None = None,
) -> str:
    """The study's training cost in one sentence and a totals table (tokens, FLOPs, share of
    training every cell alone, wall time), then per (ratio, schedule, arm) the mean cell's own
    and inherited tokens and FLOPs, and the trunk segments when there are some.

    cells: the cells table (analysis.aggregate); trunks: the trunks table (analysis.trunk_segments),
    None or empty for a study without trunks; ratio: the ratio's heading (report.words);
    planned: the plan made before the run (curriculab.cost.plan), None where there is none.
    """
    cells = _with_flops(cells)
    trunks = pl.DataFrame() if trunks is None else trunks
    if not trunks.is_empty():
        trunks = trunks.with_columns(
            (pl.col("tokens_trained") * pl.col("flops_per_token")).alias("flops")
        )
    totals = _totals(cells, trunks)
    frame = pl.DataFrame(list(totals.values()), schema={k: t for k, (_, t) in TOTALS.items()})
    columns = {key: heading for key, (heading, _) in TOTALS.items()}
    parts = [_sentence(totals, cells, trunks), table(frame, columns, FORMATS)]
    if planned is not None:
        parts.insert(1, planned_sentence(planned, cells))
    parts += ["<h3>Per cell (mean over seeds)</h3>", _per_cell(cells, ratio)]
    if not trunks.is_empty():
        parts += ["<h3>Trunk segments</h3>", _trunk_segments(trunks, ratio)]
    return "\n".join(parts)
