"""Shared prefixes: cells that train identically up to some step compute that prefix once.

Two cells of a pack train the very same floats until their learning rates first differ when
they read the same stream (same ratio, schedule and seed, hence the same initial weights and
batches) under settings that differ only in the learning-rate schedule: learning-rate arms,
e.g. `constant` and `wsd_window`, share warmup and peak until the WSD cooldown starts (69-95% of
training in the default study). The later cell then starts from a snapshot of the earlier one
at that step (weights, AdamW state, progress and the learning curve so far), exactly as a
resumed checkpoint does, and trains only the rest: its results are bitwise those of training it
from scratch (tests/training/test_batched.py), in a fraction of the time. This is the branching of
"Does your data spark joy?" (arXiv 2406.03476), applied where it changes nothing.

The planning is torch-free; snapshots hold copies of state dicts.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from curriculab.config import TrainConfig
from curriculab.training.lr import lr_at

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
    progress: Any  # curriculab.training.checkpoint.Progress

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

    stream: str | None  # the stream's sha256; None: a cell that starts from a trunk (shares none)
    seed: int
    cfg: TrainConfig
    window_start: float | None
    n_sequences: int  # the stream's length, which sets the number of steps


def branch_step(a: Candidate, b: Candidate) -> int:
    """The first optimiser step at which b's training differs from a's (0: from the start)."""
    same_other = {k: v for k, v in asdict(a.cfg).items() if k not in LR_KEYS} == {
        k: v for k, v in asdict(b.cfg).items() if k not in LR_KEYS
    }
    # The window start matters only through the learning rate, compared step by step below
    # (a matched control reads the baseline's stream under another schedule's cooldown).
    if not same_other or (a.stream, a.seed) != (b.stream, b.seed):
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


# --- trunks (training.trunk, streams.prefix): where each cell starts ---------------------------


def trunk_window_start(cfg: TrainConfig) -> float | None:
    """The trunk's window start for the learning rate: a window decay has not begun on it."""
    return 1.0 if cfg.decay_start == "window" else None


def trunk_starts(
    members: dict[str, dict[str, Any]], cfg: TrainConfig, total_blocks: int, batch_size: int
) -> dict[str, int]:
    """{schedule: the trunk step its cells start from (0: from scratch)} for one trunk under
    one learning-rate arm.

    A cell starts where it first leaves the trunk: where its stream does (its window's first
    step; a shuffled member's stream never does) or, if earlier, where its learning rate does
    (a baseline whose WSD decay is the final `decay_fraction` while the trunk is in its stable
    phase). Each start depends on its own schedule only, so adding a schedule to a trunk never
    moves another's start (and never retrains its cells). A member that never leaves starts one
    step before the end, so that it still trains (and is measured) as a cell of its own.
    """
    from curriculab.streams.prefix import window_step

    steps = total_blocks // batch_size
    trunk_lr = [lr_at(s, steps, cfg, trunk_window_start(cfg)) for s in range(steps)]
    starts = {}
    for name, spec in members.items():
        leaves, window_start = steps - 1, None
        if spec["family"] == "end_window":
            leaves = window_step(spec["window"], total_blocks, batch_size)
        # A matched control (analysis.controls) reads the trunk's order under its treatment's
        # cooldown, which starts where the treatment's window does (`lr_window`).
        window = spec.get("lr_window", spec.get("window"))
        if window is not None:
            window_start = window_step(window, total_blocks, batch_size)
            window_start = window_start * batch_size / total_blocks
        starts[name] = next(
            (s for s in range(leaves) if lr_at(s, steps, cfg, window_start) != trunk_lr[s]),
            leaves,
        )
    return starts


def trunk_parent(step: int, points: list[int], recorded: int | None) -> int:
    """The checkpoint a trunk segment up to `step` trains from: the one recorded when it was
    made (while it is still a point of the trunk, so a new point in between retrains nothing),
    else the latest point before it (0: from scratch)."""
    if recorded is not None and (recorded == 0 or recorded in points) and recorded < step:
        return recorded
    return max((p for p in points if p < step), default=0)


TRUNK_STREAM = "results/streams/trunks/{ratio}/{trunk}/seed{seed}"  # + .arrow, .summary.json
TRUNK = "results/training/trunks/{ratio}/{trunk}/{arm}/seed{seed}/step{step}"  # + .pt, .json


@dataclass(frozen=True)
class TrunkPlan:
    """Where every cell on a trunk starts and where every trunk is checkpointed (DAG time).

    starts[schedule, arm]: the trunk step its cells start from (0: from step 0);
    points[trunk, arm]: the steps at which the trunk is checkpointed, each its own target.
    """

    schedules: dict[str, dict[str, Any]]
    starts: dict[tuple[str, str], int]
    points: dict[tuple[str, str], list[int]]

    @classmethod
    def of(cls, study: Any) -> TrunkPlan:
        """The plan of a `config.Study`."""
        starts, points = {}, {}
        controls = {name: c.spec(study.schedules) for name, c in study.controls.items()}
        schedules = {**study.schedules, **controls}
        for trunk, members in study.trunks.items():
            for arm, cfg in study.arms.items():
                specs = {name: study.schedules[name] for name in members}
                specs |= {  # matched controls on this trunk, under the arms they exist in
                    name: spec
                    for name, spec in controls.items()
                    if spec.get("trunk") == trunk and arm in study.controls[name].arms
                }
                mine = trunk_starts(specs, cfg, study.budget.total_blocks, study.budget.step_blocks)
                starts.update({(name, arm): step for name, step in mine.items()})
                points[trunk, arm] = sorted({step for step in mine.values() if step})
        return cls(schedules, starts, points)

    def checkpoint(self, cell: dict[str, Any]) -> str | None:
        """The trunk checkpoint a cell (ratio, schedule, arm, seed) starts from, or None."""
        step = self.starts.get((cell["schedule"], cell["arm"]), 0)
        if not step:
            return None
        trunk = self.schedules[cell["schedule"]]["trunk"]
        return TRUNK.format(**{**cell, "trunk": trunk, "step": step}) + ".pt"

    def parent_step(self, segment: dict[str, Any]) -> int:
        """The step a trunk segment (ratio, trunk, arm, seed, step) trains from: the one its
        record names when it exists (trunk_parent), else the latest point before it."""
        record = Path(TRUNK.format(**segment) + ".json")
        recorded = json.loads(record.read_text())["parent"] if record.exists() else None
        points = self.points[segment["trunk"], segment["arm"]]
        return trunk_parent(int(segment["step"]), points, recorded)

    def records(self, ratios: list[str], seeds: list[int]) -> list[str]:
        """The record (.json) of every trunk checkpoint, for the cost accounting."""
        return [
            TRUNK.format(ratio=ratio, trunk=trunk, arm=arm, seed=seed, step=step) + ".json"
            for (trunk, arm), steps in self.points.items()
            for ratio in ratios
            for seed in seeds
            for step in steps
        ]
