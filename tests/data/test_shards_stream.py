"""Shards built in bounded memory: document batches streamed from docs.parquet, tokens appended
to a file per split, blocks written from that file memory-mapped. Whatever the batch size, the
shard is byte for byte the one packed from the whole split at once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curriculab.data.shards import SPLITS, build_shards, pack_documents, read_blocks
from curriculab.data.tokenizer import load_tokenizer
from curriculab.io import read_json


def test_any_batch_size_gives_the_same_bytes_as_packing_the_whole_split(tiny_data, tmp_path):
    tokenizer_path = tiny_data["tokenizer"]
    docs = tokenizer_path.parent.parent / "data" / "history" / "docs.parquet"
    tokenizer, eod = load_tokenizer(tokenizer_path)
    table = pq.read_table(docs)
    built = {}
    for batch_docs in (1, 7, 4096):
        out = tmp_path / f"b{batch_docs}"
        built[batch_docs] = build_shards(docs, tokenizer_path, 32, out, batch_docs=batch_docs)
        assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "test", "train"]
    assert built[1] == built[7] == built[4096]  # the manifests, checksums included
    for split in SPLITS:
        texts = table.filter(pc.equal(table["split"], split))["text"].to_pylist()
        reference, dropped = pack_documents(texts, tokenizer, 32, eod=eod)
        for batch_docs in built:
            shard = tmp_path / f"b{batch_docs}" / split / "00000.arrow"
            assert np.array_equal(read_blocks(shard), reference)
            assert shard.read_bytes() == (tmp_path / "b1" / split / "00000.arrow").read_bytes()
        record = built[1]["splits"][split]
        assert record["dropped_tokens"] == dropped and record["n_docs"] == len(texts)


def test_the_shards_of_the_study_match_a_streamed_rebuild(tiny_data, tmp_path: Path) -> None:
    """The session's shards (built by the same function) and a rebuild are the same bytes."""
    docs = tiny_data["tokenizer"].parent.parent / "data" / "cooking" / "docs.parquet"
    build_shards(docs, tiny_data["tokenizer"], 32, tmp_path, batch_docs=5)
    original = read_json(tiny_data["cooking"] / "manifest.json")
    assert read_json(tmp_path / "manifest.json")["splits"] == original["splits"]
