"""Where a result came from: code version, package versions, hardware and the exact config."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

PACKAGES = (
    "curriculab",
    "torch",
    "transformers",
    "tokenizers",
    "datasets",
    "pyarrow",
    "polars",
    "altair",
    "snakemake",
    "numpy",
    "scipy",
)


def git_commit(repo: str | Path) -> str:
    """The checkout's commit (with '+dirty' when files differ), or 'unknown' outside git."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "-uno"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def config_hash(config: dict[str, Any]) -> str:
    """sha256 of the config as canonical JSON: equal configs, equal hashes."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def provenance(config: dict[str, Any], repo: str | Path) -> dict[str, Any]:
    """Everything the report's provenance section lists."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    info: dict[str, Any] = {
        "git commit": git_commit(repo),
        "config sha256": config_hash(config),
        "python": platform.python_version(),
        "packages": ", ".join(f"{k} {v}" for k, v in versions.items()),
        "machine": f"{platform.platform()}, {os.cpu_count()} CPUs",
    }
    try:
        import torch

        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name()
    except ImportError:
        pass
    info["config_yaml"] = yaml.safe_dump(config, sort_keys=False)
    return info
