"""A study's own cells as a panel, so that they and an imported table go through one path.

Each cell is a run: its id `ratio/schedule/arm/seed{seed}`, its mixture per phase (each
domain's share of the sequences of its stream in phase 0, the stream's first `1 - late`, and
phase 1, the last `late`; one phase when `late` is 0), and its metrics from the cells table
(`results/analysis/cells.parquet`: every numeric column that is a loss or the objective).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from curriculab.grid import STREAM
from curriculab.panel.table import Panel, PanelError
from curriculab.streams.stream_file import read_stream

METRICS = ("d1_test_loss", "d2_test_loss", "objective", "d1_auc")


def stream_mixture(path: str | Path, domains: tuple[str, ...], late: float) -> np.ndarray:
    """(P, D) each domain's share of a stream's sequences in each phase."""
    names, rows, _ = read_stream(path)
    index = np.array([domains.index(n) for n in names])[rows]  # (N,) the study's domain order
    cut = len(index) - round(late * len(index)) if late else len(index)
    phases = [index[:cut]] + ([index[cut:]] if late else [])
    if any(len(p) == 0 for p in phases):
        raise PanelError(f"{path}: a phase of the stream is empty (panel late share {late})")
    return np.stack([np.bincount(p, minlength=len(domains)) / len(p) for p in phases])


def cells_panel(
    cells_path: str | Path, root: str | Path, domains: tuple[str, ...], late: float = 0.2
) -> Panel:
    """The panel of a finished study's cells (`root`: the study's directory)."""
    cells = pl.read_parquet(cells_path).sort("ratio", "schedule", "arm", "seed")
    root = Path(root)
    runs, weights = [], []
    streams: dict[tuple[str, str, int], np.ndarray] = {}
    for ratio, schedule, arm, seed in cells.select("ratio", "schedule", "arm", "seed").iter_rows():
        key = (ratio, schedule, seed)
        if key not in streams:  # the arms of a cell share its stream
            path = root / f"{STREAM.format(ratio=ratio, schedule=schedule, seed=seed)}.arrow"
            streams[key] = stream_mixture(path, domains, late)
        runs.append(f"{ratio}/{schedule}/{arm}/seed{seed}")
        weights.append(streams[key])
    shares = np.tile([1.0 - late, late] if late else [1.0], (len(runs), 1))
    metrics = {
        name: cells[name].cast(pl.Float64).to_numpy()
        for name in METRICS
        if name in cells.columns and cells[name].is_not_null().all()
    }
    return Panel(tuple(runs), domains, np.stack(weights), shares, metrics, str(cells_path))
