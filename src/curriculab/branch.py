"""Shared prefixes: cells that train identically up to some step compute that prefix once.

Two cells of a pack train the very same floats until their learning rates first differ when
they read the same stream (same ratio, schedule and seed, hence the same initial weights and
batches) under settings that differ only in the learning-rate schedule: learning-rate arms,
e.g. `constant` and `wsd_window`, share warmup and peak until the WSD cooldown starts (69-95% of
training in the default study). The later cell then starts from a snapshot of the earlier one
at that step (weights, AdamW state, progress and the learning curve so far), exactly as a
resumed checkpoint does, and trains only the rest: its results are bitwise those of training it
from scratch (tests/test_packed.py), in a fraction of the time. This is the branching of
"Does your data spark joy?" (arXiv 2406.03476), applied where it changes nothing.

The planning is torch-free; snapshots hold copies of state dicts.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from curriculab.config import TrainConfig
from curriculab.lr import lr_at

LR_KEYS = frozenset(
    {"lr", "lr_schedule", "warmup_fraction", "min_lr_fraction", "decay_fraction", "decay_start"}
)


@dataclass
class Snapshot:
    """A run's full state before optimiser step `step` (copies, safe to resume from twice)."""

    step: int
    cell: str
    model: dict[str, Any]
    optimizer: dict[str, Any]
    progress: Any  # curriculab.checkpoint.Progress

    @classmethod
    def take(cls, step: int, cell: str, model, optimizer, progress) -> Snapshot:
        return cls(
            step,
            cell,
            copy.deepcopy(model.state_dict()),
            copy.deepcopy(optimizer.state_dict()),
            copy.deepcopy(progress),
        )


@dataclass
class Branching:
    """What one cell does with shared prefixes: start from a snapshot, and/or keep snapshots
    (filled in while it trains) at the steps where later cells branch off it."""

    start: Snapshot | None = None
    keep: dict[int, Snapshot | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Candidate:
    """What decides whether two cells share a prefix (a pack's CellJob, reduced)."""

    stream: str
    seed: int
    cfg: TrainConfig
    window_start: float | None
    n_sequences: int  # the stream's length, which sets the number of steps


def branch_step(a: Candidate, b: Candidate) -> int:
    """The first optimiser step at which b's training differs from a's (0: from the start)."""
    same_other = {k: v for k, v in asdict(a.cfg).items() if k not in LR_KEYS} == {
        k: v for k, v in asdict(b.cfg).items() if k not in LR_KEYS
    }
    if not same_other or (a.stream, a.seed, a.window_start) != (b.stream, b.seed, b.window_start):
        return 0
    steps = math.ceil(a.n_sequences / a.cfg.batch_size)
    for step in range(steps):
        if lr_at(step, steps, a.cfg, a.window_start) != lr_at(step, steps, b.cfg, b.window_start):
            return step
    return max(steps - 1, 0)  # identical schedules: share all but the last step


def plan_branches(cells: list[Candidate]) -> dict[int, tuple[int, int]]:
    """{cell index: (index of the earlier cell it branches off, step)} for every cell that
    shares at least one step with an earlier cell that itself starts from scratch (the one
    sharing the longest prefix)."""
    plan: dict[int, tuple[int, int]] = {}
    for i, cell in enumerate(cells):
        best = max(
            ((branch_step(cells[r], cell), r) for r in range(i) if r not in plan),
            default=(0, -1),
        )
        if best[0] > 0:
            plan[i] = (best[1], best[0])
    return plan
