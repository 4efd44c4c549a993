"""The records of a training run: what a cell is asked to do (`CellJob`) and the state of a
run while it trains (`Run`). The functions that move a run through its life are in `.cell`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch

from curriculab.config import TrainConfig
from curriculab.training.checkpoint import Progress
from curriculab.training.inputs import CellInputs, StreamBatches
from curriculab.training.lr import lr_at


@dataclass(frozen=True)
class CellJob:
    """One cell: what it trains on, with which settings, and where it writes."""

    cell: str  # a readable label, e.g. "ratio=0.05 schedule=shuffled arm=constant seed=0"
    inputs: CellInputs
    cfg: TrainConfig
    seed: int
    out_dir: Path
    log: Path | None  # the cell's own log (progress lines); None: a trunk's (its job's log)
    window_start: float | None = None  # where the WSD decay may start (curriculab.training.lr)
    trunk: Path | None = None  # the trunk checkpoint it starts from (curriculab.training.trunk)


@dataclass
class Run:
    """A cell or a trunk segment while it trains: its model, optimiser, data and progress."""

    job: CellJob
    preset: str
    device: torch.device
    manifests: dict[str, dict[str, Any]]
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    forward: Any  # the model, or its torch.compile'd wrapper
    data: StreamBatches
    eval_sets: dict[str, np.ndarray]  # held-out blocks per domain for the learning curve
    evaluate_at: set[int]  # steps after which the learning curve is measured
    checkpoint: Path | None  # its resumable checkpoint
    fingerprint: str  # what the checkpoint belongs to
    log: TextIO
    progress: Progress = field(default_factory=lambda: Progress(curve=[]))
    resumed_at: int = 0  # the step it started at in this process
    first_bad: torch.Tensor | None = None  # first step with a non-finite loss (-1: none yet)

    @property
    def cfg(self) -> TrainConfig:
        return self.job.cfg

    @property
    def label(self) -> str:
        return self.job.cell

    @property
    def window_start(self) -> float | None:
        return self.job.window_start

    def lr(self, step: int) -> float:
        return lr_at(step, self.data.steps, self.cfg, self.window_start)
