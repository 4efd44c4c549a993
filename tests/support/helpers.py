"""Constants shared by tests: repository paths and the tiny study config."""

from __future__ import annotations

import copy
import hashlib
import zipfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
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


def make_wheel(
    directory: Path, member: str, payload: bytes, extra: dict[str, bytes] | None = None
) -> str:
    """Write tinydata-1.0 (a valid wheel holding `member` and `extra` members) into `directory`;
    return its sha256."""
    directory.mkdir(parents=True, exist_ok=True)
    wheel = directory / "tinydata-1.0-py3-none-any.whl"
    info = "tinydata-1.0.dist-info"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(member, payload)
        for name, content in (extra or {}).items():
            archive.writestr(name, content)
        archive.writestr(
            f"{info}/METADATA", "Metadata-Version: 2.1\nName: tinydata\nVersion: 1.0\n"
        )
        archive.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        archive.writestr(f"{info}/RECORD", "")
    return hashlib.sha256(wheel.read_bytes()).hexdigest()


DELETE = object()  # with_key(config, key, DELETE) removes the key


def with_key(config: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """A deep copy of `config` with one dotted key set (missing mappings created) or deleted."""
    config = copy.deepcopy(config)
    *parents, last = dotted.split(".")
    node = config
    for key in parents:
        node = node.setdefault(key, {})
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return config


def cell_inputs(tiny_data: dict[str, Path], stream: Path) -> Any:
    """The CellInputs of a cell of the tiny study that trains on `stream`."""
    from curriculab.training.inputs import CellInputs

    domains = sorted(TINY_CONFIG["domains"])
    return CellInputs(
        stream=stream,
        train_shards={n: tiny_data[n] / "train" for n in domains},
        test_shards={n: tiny_data[n] / "test" for n in domains},
        manifests={n: tiny_data[n] / "manifest.json" for n in domains},
        tokenizer=tiny_data["tokenizer"],
    )
