"""Shared fixtures: a tiny two-domain study built in code, small enough for unit tests."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from curriculab.data.prepare import run_prepare
from curriculab.data.shards import build_shards
from curriculab.data.sources import read_source, write_raw
from curriculab.data.tokenizer import run_tokenizer
from tests.helpers import TINY_CONFIG


@pytest.fixture
def tiny_config() -> dict[str, Any]:
    """A fresh deep copy of the tiny study config (tests may mutate it)."""
    return copy.deepcopy(TINY_CONFIG)


def build_tiny_data(root: Path, config: dict[str, Any] = TINY_CONFIG) -> dict[str, Path]:
    """Run the data stages in-process; return {name: path} of the tokenizer and shard dirs."""
    docs = []
    for name, spec in config["domains"].items():
        raw = root / "raw" / f"{name}.parquet"
        write_raw(read_source(spec["source"], spec.get("max_docs")), spec["source"], raw)
        docs.append(root / "data" / name / "docs.parquet")
        run_prepare(raw, docs[-1], name, **config["prepare"])
    tokenizer = root / "tokenizer" / "tokenizer.json"
    run_tokenizer(docs, config["tokenizer"]["vocab_size"], tokenizer)
    paths = {"tokenizer": tokenizer}
    for name in config["domains"]:
        paths[name] = root / "shards" / name
        build_shards(
            root / "data" / name / "docs.parquet",
            tokenizer,
            config["shards"]["seq_len"],
            paths[name],
        )
    return paths


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tokenizer and shards of the tiny study, built once per test session."""
    return build_tiny_data(tmp_path_factory.mktemp("tiny_data"))
