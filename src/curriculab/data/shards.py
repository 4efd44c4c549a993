"""Tokenize documents and pack them into fixed-length blocks stored as Arrow IPC files.

Documents are joined with an end-of-document token and cut into `seq_len` blocks: no padding,
every token is trained on. Blocks are stored as one FixedSizeList column so a shard can be
memory-mapped and viewed as a (n_blocks, seq_len) array without copying.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pyarrow as pa
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
    flat = np.ascontiguousarray(blocks.reshape(-1))  # no copy of a memory-mapped split
    values = pa.Array.from_buffers(
        pa.from_numpy_dtype(flat.dtype), flat.size, [None, pa.py_buffer(flat)]
    )
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


def _encode_to_files(
    docs_path: str | Path,
    tokenizer: Tokenizer,
    eod: int,
    dtype: np.dtype,
    raw: dict[str, Path],
    batch_docs: int,
    progress: TextIO | None,
) -> dict[str, dict[str, int]]:
    """Encode docs.parquet batch by batch, appending each split's tokens (every document's ids
    and the end-of-document token) to its file in `raw`; return each split's docs and bytes."""
    counts = {split: {"n_docs": 0, "n_bytes": 0} for split in SPLITS}
    source = pq.ParquetFile(docs_path)
    total_rows, done_rows, tokens_done = source.metadata.num_rows, 0, 0
    start = last = time.monotonic()
    with contextlib.ExitStack() as stack:
        sinks = {split: stack.enter_context(open(path, "wb")) for split, path in raw.items()}
        columns = ["text", "split", "n_bytes"]
        for batch in source.iter_batches(batch_size=batch_docs, columns=columns):
            texts = batch.column("text").to_pylist()
            splits = batch.column("split").to_pylist()
            n_bytes = batch.column("n_bytes").to_pylist()
            encodings = tokenizer.encode_batch(texts, add_special_tokens=False)
            flat: dict[str, list[int]] = {split: [] for split in SPLITS}
            for encoding, split, size in zip(encodings, splits, n_bytes, strict=True):
                flat[split].extend(encoding.ids)
                flat[split].append(eod)
                counts[split]["n_docs"] += 1
                counts[split]["n_bytes"] += size
            for split, ids in flat.items():
                np.asarray(ids, dtype=dtype).tofile(sinks[split])
                tokens_done += len(ids)
            done_rows += len(texts)
            now = time.monotonic()
            if progress is not None and (now - last >= 10 or done_rows == total_rows):
                last, rate = now, tokens_done / max(now - start, 1e-9)
                eta = (now - start) * (total_rows - done_rows) / max(done_rows, 1)
                print(
                    f"shards: {done_rows:,}/{total_rows:,} documents, {tokens_done:,} tokens, "
                    f"{rate:,.0f} tokens/s, ETA {eta:.0f}s",
                    file=progress,
                    flush=True,
                )
    return counts


def build_shards(
    docs_path: str | Path,
    tokenizer_path: str | Path,
    seq_len: int,
    out_dir: str | Path,
    batch_docs: int = 1024,
    progress: TextIO | None = None,
) -> dict[str, Any]:
    """Write `{split}.arrow` for train and test plus `manifest.json`; return the manifest. The
    manifest carries what prepare recorded about the documents (key `prepare`: the cap, what
    was dropped and why) when docs.parquet holds it.

    In bounded memory: documents stream from docs.parquet in record batches of `batch_docs`,
    are encoded by the `tokenizers` batch encoder (its threads: RAYON_NUM_THREADS), and their
    tokens are appended to a file per split; each split's blocks are then written from that
    file memory-mapped. Memory holds one batch of documents, whatever the domain's size; the
    shard is byte for byte the one `pack_documents` over the whole split gives."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer, eod = load_tokenizer(tokenizer_path)
    dtype = token_dtype(tokenizer.get_vocab_size())
    prepared = prepare_record(pq.read_schema(docs_path))
    manifest: dict[str, Any] = {
        "seq_len": seq_len,
        "vocab_size": tokenizer.get_vocab_size(),
        "dtype": str(dtype),
        "tokenizer_sha256": sha256_file(tokenizer_path),
        "splits": {},
    }
    raw = {split: out_dir / f".{split}.tokens.tmp" for split in SPLITS}
    try:
        counts = _encode_to_files(docs_path, tokenizer, eod, dtype, raw, batch_docs, progress)
        for split in SPLITS:
            n_tokens = raw[split].stat().st_size // dtype.itemsize
            n_blocks = n_tokens // seq_len
            if n_blocks == 0:
                raise ShardError(
                    f"{docs_path}: the {split} split holds fewer than {seq_len} tokens"
                )
            tokens = np.memmap(raw[split], dtype=dtype, mode="r", shape=(n_tokens,))
            write_blocks(
                tokens[: n_blocks * seq_len].reshape(n_blocks, seq_len), out_dir / f"{split}.arrow"
            )
            del tokens  # the map closes before the temporary file goes
            n_bytes = counts[split]["n_bytes"]
            manifest["splits"][split] = {
                "file": f"{split}.arrow",
                "sha256": sha256_file(out_dir / f"{split}.arrow"),
                "n_docs": counts[split]["n_docs"],
                "n_blocks": n_blocks,
                "n_tokens": n_tokens,
                "dropped_tokens": n_tokens - n_blocks * seq_len,
                "n_bytes": n_bytes,
                # Bytes per token turn a loss in nats/token into bits per byte (any tokenizer).
                "bytes_per_token": n_bytes / n_tokens,
            }
    finally:
        for path in raw.values():
            path.unlink(missing_ok=True)
    if prepared:
        manifest["prepare"] = prepared
    write_json(out_dir / "manifest.json", manifest)
    return manifest
