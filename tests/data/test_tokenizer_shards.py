"""Tokenizer and shards: deterministic, loadable by transformers, packed without padding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerFast

from curriculab.data.shards import pack_documents, read_blocks
from curriculab.data.tokenizer import END_OF_DOCUMENT, end_of_document_id
from curriculab.io import read_json, sha256_file
from tests.conftest import build_tiny_data


def test_tokenizer_round_trips_and_loads_in_transformers(tiny_data) -> None:
    tokenizer = Tokenizer.from_file(str(tiny_data["tokenizer"]))
    text = "Salt the soup. Ünïcode and emoji 🍲 survive byte-level BPE."
    assert tokenizer.decode(tokenizer.encode(text).ids) == text
    fast = PreTrainedTokenizerFast(tokenizer_file=str(tiny_data["tokenizer"]))
    assert fast(text)["input_ids"] == tokenizer.encode(text).ids
    assert tokenizer.token_to_id(END_OF_DOCUMENT) is not None


def test_packing_keeps_every_token_in_order(tiny_data) -> None:
    tokenizer = Tokenizer.from_file(str(tiny_data["tokenizer"]))
    texts = ["first document here", "second one", "a third, longer document with more words"]
    blocks, dropped = pack_documents(texts, tokenizer, seq_len=5)
    eod = end_of_document_id(tokenizer)
    expected = [t for text in texts for t in [*tokenizer.encode(text).ids, eod]]
    assert blocks.shape[1] == 5 and dropped == len(expected) % 5
    assert blocks.reshape(-1).tolist() == expected[: blocks.size]


def test_shards_match_manifest_and_docs(tiny_data) -> None:
    manifest = read_json(tiny_data["cooking"] / "manifest.json")
    for split in ("train", "test"):
        blocks = read_blocks(tiny_data["cooking"] / split)
        info = manifest["splits"][split]
        assert blocks.shape == (info["n_blocks"], manifest["seq_len"])
        assert blocks.dtype == np.uint16 and blocks.max() < manifest["vocab_size"]
        assert [f["file"] for f in info["files"]] == [f"{split}/00000.arrow"]  # one file
        assert info["sha256"] == sha256_file(tiny_data["cooking"] / split / "00000.arrow")
        assert info["n_tokens"] == blocks.size + info["dropped_tokens"]
    docs = pq.read_table(tiny_data["cooking"].parent.parent / "data" / "cooking" / "docs.parquet")
    assert manifest["splits"]["test"]["n_docs"] == docs["split"].to_pylist().count("test")


def test_data_stages_are_byte_identical(tmp_path: Path, tiny_data) -> None:
    again = build_tiny_data(tmp_path)
    first_root = tiny_data["tokenizer"].parent.parent
    for relative in (
        "tokenizer/tokenizer.json",
        "data/cooking/docs.parquet",
        "raw/history.parquet",
        "shards/cooking/train/00000.arrow",
        "shards/history/test/00000.arrow",
        "shards/history/manifest.json",
    ):
        assert sha256_file(first_root / relative) == sha256_file(tmp_path / relative), relative
    assert again.keys() == tiny_data.keys()


def test_a_shard_that_changed_after_it_was_written_is_detected(tmp_path: Path, tiny_data) -> None:
    import shutil

    import pytest

    from curriculab.data.shards import ShardError, verify_shard, verify_tokenizer

    shards = tmp_path / "cooking"
    shutil.copytree(tiny_data["cooking"], shards)
    verify_shard(shards / "train", shards / "manifest.json", "train")
    verify_tokenizer(tiny_data["tokenizer"], [shards / "manifest.json"])
    raw = bytearray((shards / "train" / "00000.arrow").read_bytes())
    raw[len(raw) // 2] ^= 0x80
    (shards / "train" / "00000.arrow").write_bytes(bytes(raw))
    with pytest.raises(ShardError, match=r"train/00000\.arrow: sha256 .* does not match"):
        verify_shard(shards / "train", shards / "manifest.json", "train")
    verify_shard(shards / "test", shards / "manifest.json", "test")  # untouched
    other = tmp_path / "tokenizer.json"
    other.write_text(tiny_data["tokenizer"].read_text() + "\n")  # any other bytes
    with pytest.raises(ShardError, match="built with another tokenizer"):
        verify_tokenizer(other, [shards / "manifest.json"])
