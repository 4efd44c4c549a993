"""Tokenize documents and pack them into fixed-length blocks stored as Arrow IPC files.

Documents are joined with an end-of-document token and cut into `seq_len` blocks: no padding,
every token is trained on. Blocks are stored as one FixedSizeList column so a shard can be
memory-mapped and viewed as a (n_blocks, seq_len) array without copying.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tokenizers import Tokenizer

from curriculab.data.prepare import prepare_record
from curriculab.data.tokenizer import end_of_document_id, load_tokenizer
from curriculab.errors import CurriculabError
from curriculab.io import read_arrow, read_json, sha256_file, write_arrow, write_json

SPLITS = ("train", "test")


class ShardError(CurriculabError, RuntimeError):
    """A shard is missing, corrupt, or too small for the study."""


def token_dtype(vocab_size: int) -> np.dtype:
    """The narrowest unsigned integer type that holds every token id."""
    return np.dtype(np.uint16) if vocab_size <= 1 << 16 else np.dtype(np.uint32)


def encode_documents(
    texts: list[str], tokenizer: Tokenizer, batch_docs: int = 512, eod: int | None = None
) -> list[np.ndarray]:
    """Each document's token ids with the end-of-document token `eod` (default: the trained
    tokenizer's) appended, as packed (encoded in batches of `batch_docs`, without the
    tokenizer's own special tokens: a pretrained one's [CLS]/[SEP] or BOS are not added)."""
    eod = end_of_document_id(tokenizer) if eod is None else eod
    pieces: list[np.ndarray] = []
    for start in range(0, len(texts), batch_docs):
        batch = texts[start : start + batch_docs]
        for encoding in tokenizer.encode_batch(batch, add_special_tokens=False):
            pieces.append(np.asarray([*encoding.ids, eod], dtype=np.int64))
    return pieces


def pack_documents(
    texts: list[str],
    tokenizer: Tokenizer,
    seq_len: int,
    batch_docs: int = 512,
    eod: int | None = None,
) -> tuple[np.ndarray, int]:
    """Tokenize in batches, append end-of-document, cut into blocks; return (blocks, dropped)."""
    pieces = encode_documents(texts, tokenizer, batch_docs, eod)
    stream = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64)
    n_blocks = len(stream) // seq_len
    blocks = stream[: n_blocks * seq_len].reshape(n_blocks, seq_len)  # (n_blocks, seq_len)
    return blocks.astype(token_dtype(tokenizer.get_vocab_size())), len(stream) - blocks.size


def write_blocks(blocks: np.ndarray, path: str | Path) -> None:
    """Write (n_blocks, seq_len) tokens as one record batch of a FixedSizeList column."""
    seq_len = blocks.shape[1]
    values = pa.array(blocks.reshape(-1))
    column = pa.FixedSizeListArray.from_arrays(values, seq_len)
    write_arrow(pa.table({"tokens": column}), path)


def verify_shard(shard: str | Path, manifest: str | Path, split: str) -> None:
    """Check a shard against the sha256 its manifest recorded when it was written; a shard
    changed since (a flipped bit, a partial copy) stops the job with a ShardError naming it."""
    expected = read_json(manifest)["splits"][split]["sha256"]
    actual = sha256_file(shard)
    if actual != expected:
        raise ShardError(
            f"{shard}: sha256 {actual[:16]}... does not match {expected[:16]}... recorded in "
            f"{manifest}; the shard changed after it was written (delete {Path(shard).parent} "
            "and rerun to rebuild it)"
        )


def verify_tokenizer(tokenizer: str | Path, manifests: Iterable[str | Path]) -> None:
    """Check that the tokenizer (hashed once) is the one every manifest's shards were
    tokenized with."""
    actual = sha256_file(tokenizer)
    for manifest in manifests:
        if read_json(manifest)["tokenizer_sha256"] != actual:
            raise ShardError(
                f"{tokenizer}: sha256 does not match tokenizer_sha256 in {manifest}; the shards "
                "were built with another tokenizer (delete results/shards and rerun)"
            )


def block_counts(manifests: dict[str, dict[str, Any]], split: str) -> dict[str, int]:
    """{domain: blocks of `split`} from loaded shard manifests (`manifest.json`)."""
    return {name: int(m["splits"][split]["n_blocks"]) for name, m in manifests.items()}


def read_blocks(path: str | Path) -> np.ndarray:
    """Memory-map a shard and return its (n_blocks, seq_len) token view (no copy)."""
    column = read_arrow(path)["tokens"].combine_chunks()
    seq_len = column.type.list_size
    return column.values.to_numpy(zero_copy_only=True).reshape(-1, seq_len)


def build_shards(
    docs_path: str | Path, tokenizer_path: str | Path, seq_len: int, out_dir: str | Path
) -> dict[str, Any]:
    """Write `{split}.arrow` for train and test plus `manifest.json`; return the manifest. The
    manifest carries what prepare recorded about the documents (key `prepare`: the cap, what
    was dropped and why) when docs.parquet holds it."""
    out_dir = Path(out_dir)
    tokenizer, eod = load_tokenizer(tokenizer_path)
    docs = pq.read_table(docs_path, columns=["text", "split", "n_bytes"])
    prepared = prepare_record(pq.read_schema(docs_path))
    manifest: dict[str, Any] = {
        "seq_len": seq_len,
        "vocab_size": tokenizer.get_vocab_size(),
        "dtype": str(token_dtype(tokenizer.get_vocab_size())),
        "tokenizer_sha256": sha256_file(tokenizer_path),
        "splits": {},
    }
    for split in SPLITS:
        rows = docs.filter(pc.equal(docs["split"], split))
        blocks, dropped = pack_documents(rows["text"].to_pylist(), tokenizer, seq_len, eod=eod)
        if len(blocks) == 0:
            raise ShardError(f"{docs_path}: the {split} split holds fewer than {seq_len} tokens")
        n_bytes = int(pc.sum(rows["n_bytes"]).as_py())
        n_tokens = int(blocks.size + dropped)
        write_blocks(blocks, out_dir / f"{split}.arrow")
        manifest["splits"][split] = {
            "file": f"{split}.arrow",
            "sha256": sha256_file(out_dir / f"{split}.arrow"),
            "n_docs": len(rows),
            "n_blocks": len(blocks),
            "n_tokens": n_tokens,
            "dropped_tokens": int(dropped),
            "n_bytes": n_bytes,
            # Bytes per token turns a loss in nats/token into bits per byte (tokenizer-agnostic).
            "bytes_per_token": n_bytes / n_tokens,
        }
    if prepared:
        manifest["prepare"] = prepared
    write_json(out_dir / "manifest.json", manifest)
    return manifest
