"""Constants shared by tests: repository paths and the tiny study config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"

TINY_CONFIG: dict[str, Any] = {
    "study": "tiny",
    "target_domain": "cooking",
    "domains": {
        "cooking": {"source": {"type": "synthetic", "topic": "cooking", "n_docs": 80}},
        "history": {"source": {"type": "synthetic", "topic": "history", "n_docs": 240}},
    },
    "prepare": {"test_fraction": 0.2, "min_chars": 20},
    "tokenizer": {"vocab_size": 320},
    "shards": {"seq_len": 32},
    "streams": {"budget": "fixed_data"},
    "grid": {
        "ratios": [0.1, 0.3],
        "schedules": {
            "shuffled": {"family": "shuffled"},
            "d1_last": {"family": "sequential", "order": ["history", "cooking"]},
            "late": {"family": "placement", "a": 8, "b": 1},
        },
        "seeds": [0, 1],
    },
    "model": {"preset": "micro"},
    "train": {
        "batch_size": 8,
        "lr": 0.01,
        "warmup_fraction": 0.1,
        "min_lr_fraction": 0.1,
        "weight_decay": 0.0,
        "grad_clip": 1.0,
        "eval_points": 4,
        "eval_blocks": 8,
        "final_eval_blocks": 16,
        "log_every_steps": 5,
        "device": "cpu",
    },
}
