"""Reading what the training and stream stages wrote: the public readers every table uses.

A run directory (`results/training/{ratio}/{schedule}/{arm}/seed{seed}/`) holds `metrics.json`,
`eval.json` and `curve.parquet`; a stream has a summary JSON. These functions read them with
one-line errors that name the file and the key, and give each cell its identity columns.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RunSpec = tuple[str, str, str, int, Path]
"""(ratio label, schedule name, learning-rate arm, seed, run directory) of one cell."""
StreamSpec = tuple[str, str, int, Path]
"""(ratio label, schedule name, seed, stream summary file) of one stream (shared by the arms)."""


def read_record(path: Path) -> dict[str, Any]:
    """Load a JSON object, naming the file in the error when it is absent or malformed."""
    if not path.is_file():
        raise ValueError(f"{path}: missing file")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(payload, dict):
        raise ValueError(f"{path}: expected a JSON object at the top level")
    return payload


def get_field(mapping: Any, key: str, path: Path, where: str = "") -> Any:
    """`mapping[key]`, or a one-line ValueError naming the file and the dotted key path."""
    if not isinstance(mapping, dict) or key not in mapping:
        raise ValueError(f"{path}: missing key {where + key!r}")
    return mapping[key]


def ratio_value(ratio: str) -> float:
    """Parse a ratio label such as "0.05" (D1 train blocks per D2 train block)."""
    try:
        value = float(ratio)
    except ValueError:
        raise ValueError(f"ratio {ratio!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"ratio {ratio!r} is not finite")
    return value


def check_runs(runs: Sequence[tuple]) -> list:
    """Runs (or streams) in table order; refuses an empty list and repeated cells, which would
    double-count. Each run is (ratio, *identity, path)."""
    if not runs:
        raise ValueError("collect_cells: no runs given")
    seen: set[tuple] = set()
    for run in runs:
        if run[:-1] in seen:
            raise ValueError(f"collect_cells: cell {run[:-1]} given twice")
        seen.add(run[:-1])
    return sorted(runs, key=lambda run: (ratio_value(run[0]), *run[1:-1]))


def cell_identity(run: RunSpec) -> dict[str, Any]:
    ratio, schedule, arm, seed, _ = run
    return {
        "ratio": ratio,
        "ratio_value": ratio_value(ratio),
        "schedule": schedule,
        "arm": arm,
        "seed": seed,
    }
