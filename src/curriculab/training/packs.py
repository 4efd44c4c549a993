"""Which cells one training job trains: the packs of a study (torch-free, read at DAG time).

A cell stays its own unit of results (its run directory, its outputs, its verdicts). A *pack*
is a resource decision: the cells that one training job trains in one process, so that the
interpreter, torch and transformers are loaded once per job instead of once per cell, and (on
`packing: batched`) the cells' steps run as one batched computation.

Caching is per cell. Every finished cell records its pack in its metrics.json; when all the
members of a recorded pack are still finished and still in the grid, that pack is planned again
unchanged, so Snakemake sees the job that made those files and reruns it only on its usual
triggers (changed settings, newer inputs). Every other cell (new, missing, or whose pack was
broken up) is planned afresh: in grid order, in packs of at most `size`. Packs of finished
cells are never touched by adding cells, so a new seed or schedule trains only what is missing.

A pack's name is a hash of its members, so the same cells always form the same job (also when
a cluster node re-reads the workflow while other packs are running).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pack:
    """Cells trained by one job, in grid order."""

    name: str
    cells: tuple[str, ...]


def pack_name(cells: Sequence[str]) -> str:
    """A stable name for a set of cells: `p` and 10 hex digits of a hash of their ids."""
    return "p" + hashlib.sha256("\n".join(cells).encode()).hexdigest()[:10]


def recorded_pack(metrics: Path) -> tuple[str, ...] | None:
    """The members of the pack recorded in a finished cell's metrics.json (None if unreadable
    or from before packs)."""
    try:
        cells = json.loads(metrics.read_text())["pack"]["cells"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return tuple(cells) if isinstance(cells, list) else None


def plan_packs(
    cells: Sequence[str],
    size: int,
    record: Callable[[str], tuple[str, ...] | None],
) -> list[Pack]:
    """Packs that cover `cells` (ids in grid order) exactly once.

    record(cell): the members of the pack that trained the cell, or None when the cell is not
    finished. A recorded pack is kept when every member is in `cells` and records the same pack.
    """
    if size < 1:
        raise ValueError(f"cells per job must be at least 1, got {size}")
    in_grid = set(cells)
    records = {cell: record(cell) for cell in cells}
    kept: dict[tuple[str, ...], Pack] = {}
    for cell in cells:
        members = records[cell]
        if members is None or members in kept or cell not in members:
            continue
        if all(m in in_grid and records[m] == members for m in members):
            kept[members] = Pack(pack_name(members), members)
    covered = {cell for members in kept for cell in members}
    fresh = [cell for cell in cells if cell not in covered]
    chunks = [tuple(fresh[i : i + size]) for i in range(0, len(fresh), size)]
    return [*kept.values(), *(Pack(pack_name(chunk), chunk) for chunk in chunks)]
