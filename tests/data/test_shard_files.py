"""A split in several shard files (`shards.file_mb`): cut at block boundaries, bitwise stable
across rebuilds, equal in content to the one-file build, read as one array, checked file by
file against the manifest."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from curriculab.config import load_study
from curriculab.data.shards import (
    SPLITS,
    ShardBlocks,
    ShardError,
    blocks_per_file,
    build_shards,
    read_blocks,
    verify_shard,
)
from curriculab.errors import ConfigError
from curriculab.io import read_json, sha256_file
from tests.support.helpers import SCHEMA, with_key

SEQ_LEN = 32


def _docs(tiny_data: dict[str, Path], name: str) -> Path:
    return tiny_data["tokenizer"].parent.parent / "data" / name / "docs.parquet"


def _file_mb(blocks: int) -> float:
    """The file size (MB) that holds `blocks` blocks of SEQ_LEN uint16 tokens."""
    return blocks * SEQ_LEN * 2 / 1e6


@pytest.fixture(scope="module")
def built(tiny_data, tmp_path_factory) -> dict[str, Path]:
    """The history domain built as one file per split and as files of 7 blocks, twice."""
    root = tmp_path_factory.mktemp("files")
    out = {}
    for name, file_mb in (("one", 1024.0), ("many", _file_mb(7)), ("again", _file_mb(7))):
        out[name] = root / name
        build_shards(
            _docs(tiny_data, "history"), tiny_data["tokenizer"], SEQ_LEN, out[name],
            batch_docs=13, file_mb=file_mb,
        )  # fmt: skip
    return out


def test_files_hold_the_one_file_blocks_in_order(built) -> None:
    one, many = (
        read_json(built["one"] / "manifest.json"),
        read_json(built["many"] / "manifest.json"),
    )
    assert many["file_blocks"] == 7
    for split in SPLITS:
        files = many["splits"][split]["files"]
        n_blocks = one["splits"][split]["n_blocks"]
        assert len(files) == math.ceil(n_blocks / 7) > 1
        assert [f["n_blocks"] for f in files[:-1]] == [7] * (len(files) - 1)
        assert sum(f["n_blocks"] for f in files) == n_blocks
        assert [f["file"] for f in files] == [f"{split}/{k:05d}.arrow" for k in range(len(files))]
        whole = read_blocks(built["one"] / split)
        parts = read_blocks(built["many"] / split)
        assert isinstance(parts, ShardBlocks) and parts.shape == whole.shape
        assert np.array_equal(np.asarray(parts), whole)
        for f in files:  # each file is its own block range of the one-file shard
            start = int(f["file"][-11:-6]) * 7
            assert np.array_equal(read_blocks(built["many"] / f["file"]), whole[start : start + 7])
        # Everything but where the tokens are stored is the same record.
        for key in ("n_docs", "n_blocks", "n_tokens", "dropped_tokens", "n_bytes"):
            assert many["splits"][split][key] == one["splits"][split][key], key
        assert many["splits"][split]["sha256"] != one["splits"][split]["sha256"]


def test_a_rebuild_gives_the_same_bytes_in_every_file(built) -> None:
    assert read_json(built["many"] / "manifest.json") == read_json(built["again"] / "manifest.json")
    for split in SPLITS:
        first = sorted((built["many"] / split).iterdir())
        assert [p.name for p in first] == [
            p.name for p in sorted((built["again"] / split).iterdir())
        ]
        for path in first:
            assert sha256_file(path) == sha256_file(built["again"] / split / path.name)
        verify_shard(built["many"] / split, built["many"] / "manifest.json", split)


def test_blocks_index_like_the_concatenation(built) -> None:
    whole = read_blocks(built["one"] / "train")
    parts = read_blocks(built["many"] / "train")
    rng = np.random.default_rng(0)
    n = len(whole)
    for index in (
        rng.integers(0, n, 50),  # random, repeats, across files
        np.arange(n)[::-1],
        rng.integers(0, n, (3, 4)),  # any shape of indices
        np.array([], dtype=np.int64),
        np.array([-1, -n]),  # from the end
    ):
        assert np.array_equal(parts[index], whole[index])
    assert np.array_equal(parts[5], whole[5]) and np.array_equal(parts[3:20:2], whole[3:20:2])
    assert len(parts) == n and parts.dtype == whole.dtype
    with pytest.raises(IndexError):
        parts[np.array([n])]


def test_a_missing_extra_or_changed_file_is_named(built, tmp_path: Path) -> None:
    shards = tmp_path / "history"
    shutil.copytree(built["many"], shards)
    manifest = shards / "manifest.json"
    (shards / "train" / "99999.arrow").write_bytes(b"")
    with pytest.raises(ShardError, match=r"train/99999\.arrow: the files of .* are not the"):
        verify_shard(shards / "train", manifest, "train")
    (shards / "train" / "99999.arrow").unlink()
    (shards / "train" / "00001.arrow").unlink()
    with pytest.raises(ShardError, match=r"train/00001\.arrow: the files of"):
        verify_shard(shards / "train", manifest, "train")
    shutil.copy(built["many"] / "train" / "00002.arrow", shards / "train" / "00001.arrow")
    with pytest.raises(ShardError, match=r"train/00001\.arrow: sha256 .* does not match"):
        verify_shard(shards / "train", manifest, "train")


def test_a_file_size_of_zero_is_refused(tiny_config) -> None:
    for bad in (0, -1):
        with pytest.raises(ConfigError, match=r"^config key 'shards\.file_mb'.*") as error:
            load_study(with_key(tiny_config, "shards.file_mb", bad), SCHEMA)
        assert "\n" not in str(error.value)
    with pytest.raises(ShardError, match=r"shards\.file_mb.*above 0"):
        blocks_per_file(0, SEQ_LEN, np.dtype(np.uint16))
    assert load_study(with_key(tiny_config, "shards.file_mb", 0.5), SCHEMA).shard_file_mb == 0.5
    assert blocks_per_file(1e-9, SEQ_LEN, np.dtype(np.uint16)) == 1  # never an empty file
