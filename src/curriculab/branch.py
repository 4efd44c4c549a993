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

    stream: str | None  # None: a cell that starts from a trunk, which shares with no other
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
    if a.stream is None:
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


# --- trunks (curriculab.trunk, streams.trunk): where each cell starts ----------------------------


def trunk_window_start(cfg: TrainConfig) -> float | None:
    """The trunk's window start for the learning rate: a window decay has not begun on it."""
    return 1.0 if cfg.decay_start == "window" else None


def trunk_starts(
    members: dict[str, dict[str, Any]], cfg: TrainConfig, total_blocks: int, batch_size: int
) -> dict[str, int]:
    """{schedule: the trunk step its cells start from (0: from scratch)} for one trunk under
    one learning-rate arm.

    A cell can start from a trunk checkpoint at step q when its stream and its learning rates
    equal the trunk's on every step before q. Its stream leaves the trunk's order where its
    window starts (a shuffled member never does); its learning rate may leave earlier (a WSD
    decay that starts at a fixed point, or, without a window, at `decay_fraction`). Checkpoints
    exist where windows start, so a cell starts from the latest of those it still agrees with.
    """
    from curriculab.streams.trunk import branch_step

    steps = total_blocks // batch_size
    trunk_lr = [lr_at(s, steps, cfg, trunk_window_start(cfg)) for s in range(steps)]
    windows = {
        name: branch_step(spec["window"], total_blocks, batch_size)
        for name, spec in members.items()
        if spec["family"] == "end_window"
    }
    starts = {}
    for name in members:
        leaves = windows.get(name, steps)
        window_start = leaves * batch_size / total_blocks if name in windows else None
        for step in range(leaves):
            if lr_at(step, steps, cfg, window_start) != trunk_lr[step]:
                leaves = step
                break
        starts[name] = max((p for p in windows.values() if p <= leaves), default=0)
    return starts


def trunk_parent(step: int, points: list[int], recorded: int | None) -> int:
    """The checkpoint a trunk segment up to `step` trains from: the one recorded when it was
    made (while it is still a point of the trunk, so a new point in between retrains nothing),
    else the latest point before it (0: from scratch)."""
    if recorded is not None and (recorded == 0 or recorded in points) and recorded < step:
        return recorded
    return max((p for p in points if p < step), default=0)
