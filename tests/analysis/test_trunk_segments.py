"""Tests for the trunks table (analysis.trunk_segments): one row per trunk segment file."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from curriculab.analysis.trunk_segments import TRUNK_SCHEMA, collect_trunks


def segment(step: int, parent: int, seed: int = 0, ratio: str = "0.15", **extra) -> dict:
    """A trunk checkpoint file's payload: 2,048 tokens a step, 1.2 MFLOP a token."""
    return {
        "ratio": ratio,
        "ratio_value": float(ratio),
        "trunk": "main",
        "arm": "wsd",
        "seed": seed,
        "step": step,
        "parent": parent,
        "tokens_trained": 2048 * (step - parent),
        "tokens_seen": 2048 * step,
        "flops_per_token": 1.2e6,
        "train_seconds": 0.05 * (step - parent),
        "wall_seconds": 0.06 * (step - parent),
        **extra,
    }


def write(root: Path, payloads: list[dict]) -> list[Path]:
    paths = []
    for i, payload in enumerate(payloads):
        paths.append(root / f"segment{i}.json")
        paths[-1].write_text(json.dumps(payload))
    return paths


def test_segments_become_rows_in_order(tmp_path: Path) -> None:
    payloads = [segment(240, 160, seed=1), segment(160, 0, ratio="0.05"), segment(160, 0, seed=1)]
    trunks = collect_trunks(write(tmp_path, payloads))
    assert trunks.schema == pl.Schema(TRUNK_SCHEMA)
    assert trunks.select("ratio", "seed", "parent", "step").rows() == [
        ("0.05", 0, 0, 160),
        ("0.15", 1, 0, 160),
        ("0.15", 1, 160, 240),
    ]
    # Each segment trained only its own steps: the two of seed 1 add up to its last checkpoint.
    seed1 = trunks.filter(pl.col("ratio") == "0.15")
    assert seed1["tokens_trained"].sum() == seed1["tokens_seen"].max() == 2048 * 240


def test_no_trunks_give_an_empty_table_with_the_columns() -> None:
    trunks = collect_trunks([])
    assert trunks.is_empty() and trunks.schema == pl.Schema(TRUNK_SCHEMA)


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ({k: v for k, v in segment(240, 160).items() if k != "tokens_trained"}, "tokens_trained"),
        (segment(240, 160, ratio_value=0.2), "'ratio_value'"),
        (segment(240, 160, tokens_trained=2048 * 241), "'tokens_trained'"),
        (segment(160, 240, tokens_trained=0), "'parent'"),
    ],
)
def test_a_segment_that_cannot_be_is_refused(tmp_path: Path, payload: dict, match: str) -> None:
    (path,) = write(tmp_path, [payload])
    with pytest.raises(ValueError, match=match) as error:
        collect_trunks([path])
    assert str(path) in str(error.value)


def test_a_segment_given_twice_is_refused(tmp_path: Path) -> None:
    paths = write(tmp_path, [segment(160, 0), segment(160, 0)])
    with pytest.raises(ValueError, match="twice"):
        collect_trunks(paths)
