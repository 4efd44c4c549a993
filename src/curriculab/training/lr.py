"""Learning-rate schedules, and how much learning rate each domain's data received.

Torch-free, so that config checks, the analysis and the tests can use it without loading a
framework. The training loop (`curriculab.training.loop`) calls `lr_at` once per optimiser step.

Why exposure matters: under a decaying schedule, data placed late trains at small learning
rates. "D1 late helps (or hurts)" cannot be told apart from "data trained at a low learning
rate is learned less" unless the learning rate each domain saw is measured and reported.
"""

from __future__ import annotations

import hashlib
import math
from types import SimpleNamespace
from typing import Any, Protocol

import numpy as np


class LRSettings(Protocol):
    """The learning-rate fields of a `TrainConfig` (one learning-rate arm)."""

    lr: float
    lr_schedule: str
    warmup_fraction: float
    min_lr_fraction: float
    decay_fraction: float
    decay_start: str


def decay_start_step(total_steps: int, cfg: LRSettings, window_start: float | None) -> int:
    """First step of the WSD decay.

    decay_start 'fixed': the final `decay_fraction` of the steps. 'window': where the
    schedule's final D1 window begins (`window_start`, a fraction of training), so that the
    cooldown and the data window coincide; schedules without a window fall back to 'fixed'.
    """
    if cfg.decay_start == "window" and window_start is not None:
        return round(window_start * total_steps)
    return total_steps - round(cfg.decay_fraction * total_steps)


def lr_at(step: int, total_steps: int, cfg: LRSettings, window_start: float | None = None) -> float:
    """Learning rate at optimiser step `step` (0-based) of `total_steps`.

    (1) linear warmup over warmup_fraction of the steps, then
    (2) cosine or linear decay to min_lr_fraction * lr, a constant lr, or WSD: constant until
        the decay starts (`decay_start_step`), then linear decay to the floor.
    """
    warmup = max(1, round(cfg.warmup_fraction * total_steps))
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    floor = cfg.min_lr_fraction * cfg.lr
    if cfg.lr_schedule == "constant":
        return cfg.lr
    if cfg.lr_schedule == "wsd":
        start = max(warmup, decay_start_step(total_steps, cfg, window_start))
        if step < start:
            return cfg.lr
        progress = (step + 1 - start) / max(1, total_steps - start)
        return cfg.lr - (cfg.lr - floor) * min(progress, 1.0)
    progress = min((step - warmup) / max(1, total_steps - 1 - warmup), 1.0)
    if cfg.lr_schedule == "linear":
        return cfg.lr - (cfg.lr - floor) * progress
    return floor + 0.5 * (cfg.lr - floor) * (1 + math.cos(math.pi * progress))


def lr_curve(steps: int, cfg: LRSettings, window_start: float | None) -> np.ndarray:
    """(steps,) the learning rate of every optimiser step, as the training loop sets it."""
    return np.array([lr_at(s, steps, cfg, window_start) for s in range(steps)], np.float64)


def lr_per_position(
    n_positions: int, batch_size: int, cfg: LRSettings, window_start: float | None
) -> np.ndarray:
    """(n,) the learning rate at which each stream position (sequence) is trained."""
    per_step = lr_curve(math.ceil(n_positions / batch_size), cfg, window_start)
    return np.repeat(per_step, batch_size)[:n_positions]


LR_RECORD_KEYS = (
    "lr", "lr_schedule", "warmup_fraction", "min_lr_fraction", "decay_fraction", "decay_start"
)  # fmt: skip


def lr_record(steps: int, cfg: LRSettings, window_start: float | None) -> dict[str, Any]:
    """What a run records of its learning-rate curve: the settings and window start that give
    every step's rate again (`record_curve`), where the WSD decay starts, and the sha256 of
    the per-step rates as fractions of the peak, so two runs' curves compare exactly."""
    curve = lr_curve(steps, cfg, window_start) / cfg.lr
    decay = decay_start_step(steps, cfg, window_start) if cfg.lr_schedule == "wsd" else None
    return {
        "steps": steps,
        "window_start": window_start,
        "settings": {key: getattr(cfg, key) for key in LR_RECORD_KEYS},
        "decay_start_step": decay,
        "sha256": hashlib.sha256(curve.tobytes()).hexdigest(),
    }


def record_curve(record: dict[str, Any]) -> np.ndarray:
    """(steps,) lr / peak at every optimiser step of a run, from its `lr_record`."""
    settings = SimpleNamespace(**record["settings"])
    return lr_curve(record["steps"], settings, record["window_start"]) / settings.lr


def exposure(
    domains: np.ndarray, names: list[str], lrs: np.ndarray, peak: float
) -> dict[str, dict[str, Any]]:
    """Per domain: how much of training, and at which learning rates, its sequences got.

    - sequences, token_share: its positions, and their share of all positions;
    - lr_weighted_share: sum of lr(t) over its positions / the same sum over all positions
      (equals token_share under a constant schedule; below it when the domain sits where the
      learning rate is low);
    - mean_lr, mean_lr_fraction: the mean learning rate of its positions, absolute and as a
      fraction of the peak `peak`.
    domains: (n,) index into `names` per position; lrs: (n,) learning rate per position.
    """
    total_lr, n = float(lrs.sum()), len(domains)
    out = {}
    for k, name in enumerate(names):
        mine = lrs[domains == k]
        mean = float(mine.mean()) if len(mine) else math.nan
        out[name] = {
            "sequences": len(mine),
            "token_share": len(mine) / n if n else math.nan,
            "lr_weighted_share": float(mine.sum()) / total_lr if total_lr else math.nan,
            "mean_lr": mean,
            "mean_lr_fraction": mean / peak,
        }
    return out


def lr_by_bin(lrs: np.ndarray, peak: float, bins: int) -> list[float]:
    """Mean learning rate (fraction of the peak) in each of `bins` equal stretches of training,
    on the same axis as the stream summary's barcode."""
    bins = max(1, min(bins, len(lrs)))
    starts = np.linspace(0, len(lrs), bins + 1).round().astype(np.int64)
    sums = np.add.reduceat(lrs, starts[:-1])
    return (sums / np.diff(starts) / peak).tolist()


def arm_description(cfg: LRSettings) -> str:
    """One readable line for a learning-rate arm, as the report lists it."""
    text = f"{cfg.lr_schedule}, peak {cfg.lr:g}, warmup {cfg.warmup_fraction:g}"
    if cfg.lr_schedule == "wsd":
        where = (
            f"from the start of the schedule's final window (else the final {cfg.decay_fraction:g})"
            if cfg.decay_start == "window"
            else f"over the final {cfg.decay_fraction:g}"
        )
        text += f", linear decay to {cfg.min_lr_fraction:g} x peak {where}"
    elif cfg.lr_schedule != "constant":
        text += f", decay to {cfg.min_lr_fraction:g} x peak"
    return text
