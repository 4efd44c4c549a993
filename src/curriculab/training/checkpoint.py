"""Checkpoints of a training run: everything needed to resume it with identical results.

A checkpoint holds weights, optimizer state, progress (step, tokens, the learning curve so far)
and RNG states, written atomically. It is only resumed when its fingerprint (preset, seed,
training settings, the stream's hash and the D1 window) matches the run's; it loads with
`weights_only=True`, so unpickling never runs code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

import torch

from curriculab.config import TrainConfig
from curriculab.errors import CurriculabError, first_line
from curriculab.io import atomic_path


class TrainingError(CurriculabError, RuntimeError):
    """Training cannot go on (e.g. a non-finite loss, an unreadable checkpoint)."""


@dataclass
class Progress:
    """Where a run is: everything besides weights and optimizer needed to resume it."""

    step: int = 0
    tokens_seen: int = 0
    train_seconds: float = 0.0
    curve: list[dict[str, Any]] | None = None
    inherited: dict[str, Any] | None = None  # what the run took over (train.inheritance)


def run_fingerprint(
    stream_sha256: str, preset: str, cfg: TrainConfig, seed: int, window_start: float | None
) -> str:
    """Identifies what a checkpoint belongs to (`stream_sha256`: the stream file's, as
    StreamBatches hashed it); a checkpoint of other settings is ignored."""
    parts = [
        preset,
        str(seed),
        repr(sorted(asdict(cfg).items())),
        repr(window_start),
        stream_sha256,
    ]
    return "|".join(parts)


def save_checkpoint(
    path: Path, model, optimizer, progress: Progress, fingerprint: str, **extra: Any
) -> None:
    """Weights, optimizer, progress and RNG states (and `extra` entries), written atomically."""
    state = {
        **extra,
        "fingerprint": fingerprint,
        "model": {name: _compact(t) for name, t in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "progress": asdict(progress),
        "rng_cpu": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _compact(tensor: torch.Tensor) -> torch.Tensor:
    """The tensor, copied if it is a view into a larger storage (a packed cell's weights are
    rows of its pack's stack; torch.save would write the whole stack)."""
    if tensor.untyped_storage().nbytes() == tensor.numel() * tensor.element_size():
        return tensor
    return tensor.clone()


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint's state, loaded with weights_only (unpickling never runs code)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise TrainingError(
            f"{path}: not a checkpoint that loads safely ({first_line(error)}); "
            "delete it to restart the cell"
        ) from None


def restore(state: dict[str, Any], model, optimizer) -> Progress:
    """Put a checkpoint's weights, optimizer state and RNG states in place; its progress."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["rng_cpu"])
    if state["rng_cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng_cuda"])
    return Progress(**state["progress"])


def load_checkpoint(path: Path, model, optimizer, fingerprint: str, log: TextIO) -> Progress:
    """Restore a matching checkpoint into model and optimizer; a fresh Progress otherwise."""
    if not path.exists():
        return Progress(curve=[])
    state = read_checkpoint(path)
    if state["fingerprint"] != fingerprint:
        print(f"ignoring {path}: it belongs to other settings or another stream", file=log)
        return Progress(curve=[])
    progress = restore(state, model, optimizer)
    print(f"resumed from {path} at step {progress.step}", file=log, flush=True)
    return progress
