"""The trunk segments of a study as one table, for the report's cost accounting.

A trunk is trained once on the base mixture and checkpointed at each branch point; the cells
whose window starts there resume from that checkpoint ("Does your data spark joy?", arXiv
2406.03476). Each segment (from its parent checkpoint to the next) writes one JSON file; its
`tokens_trained` is what it trained itself, so a study's own training is its cells'
`trained_tokens` plus its trunk segments' `tokens_trained`, each token counted once.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from curriculab.analysis.runs import get_field, ratio_value, read_record

TRUNK_SCHEMA: dict[str, type[pl.DataType]] = {
    "ratio": pl.String,  # D1 ratio label, as in the cells table
    "ratio_value": pl.Float64,
    "trunk": pl.String,  # the trunk's name
    "arm": pl.String,  # learning-rate arm
    "seed": pl.Int64,
    "step": pl.Int64,  # the checkpoint this segment ends at (optimiser steps)
    "parent": pl.Int64,  # the checkpoint it resumed from; 0 = trained from scratch
    "tokens_trained": pl.Int64,  # tokens this segment trained itself (parent -> step)
    "tokens_seen": pl.Int64,  # tokens from step 0 to `step`
    "flops_per_token": pl.Float64,  # training FLOPs per token (forward and backward)
    "train_seconds": pl.Float64,  # time in training steps
    "wall_seconds": pl.Float64,  # the segment's wall-clock time
}
SEGMENT = ["ratio", "trunk", "arm", "seed", "step"]


def _segment(path: Path) -> dict[str, Any]:
    """One trunk segment's row, checked: its keys, its ratio and its token counts."""
    payload = read_record(path)
    cast = {pl.Float64: float, pl.Int64: int, pl.String: str}
    row = {key: cast[dtype](get_field(payload, key, path)) for key, dtype in TRUNK_SCHEMA.items()}
    if ratio_value(row["ratio"]) != row["ratio_value"]:
        raise ValueError(f"{path}: key 'ratio_value' {row['ratio_value']} is not {row['ratio']}")
    if not 0 <= row["tokens_trained"] <= row["tokens_seen"]:
        raise ValueError(f"{path}: key 'tokens_trained' is not in [0, tokens_seen]")
    if not 0 <= row["parent"] < row["step"]:
        raise ValueError(f"{path}: key 'parent' {row['parent']} is not in [0, step)")
    return row


def collect_trunks(paths: Sequence[str | Path]) -> pl.DataFrame:
    """Every trunk segment file as one row of TRUNK_SCHEMA, sorted by ratio_value, trunk, arm,
    seed, step; an empty table (with those columns) for a study without trunks.

    A segment given twice is refused: it would count its tokens twice.
    """
    if isinstance(paths, str | Path):  # one file given bare, not as a list of one
        paths = [paths]
    rows = [_segment(Path(path)) for path in paths]
    table = pl.DataFrame(rows, schema=TRUNK_SCHEMA)
    repeated = table.filter(pl.struct(SEGMENT).is_duplicated())
    if not repeated.is_empty():
        raise ValueError(f"collect_trunks: segment {repeated.select(SEGMENT).row(0)} given twice")
    return table.sort("ratio_value", "trunk", "arm", "seed", "step")
