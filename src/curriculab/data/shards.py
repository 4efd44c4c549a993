"""Tokenize documents and pack them into fixed-length blocks stored as Arrow IPC files.

Documents are joined with an end-of-document token and cut into `seq_len` blocks: no padding,
every token is trained on. A split is a folder of files (`train/00000.arrow`, ...), each at
most `file_mb` MB of tokens and cut at a block boundary; each file holds one FixedSizeList
column, so it is memory-mapped and viewed as a (n_blocks, seq_len) array without copying, and
`read_blocks` indexes the files of a split as one array. The manifest records every file's
sha256; the split's `sha256` (which the final test's fingerprint names) is its one file's
sha256, or for several files the sha256 of theirs joined in order.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
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
DEFAULT_FILE_MB = 1024.0  # MB (10^6 bytes) of tokens per shard file (config `shards.file_mb`)


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


def split_files(folder: str | Path) -> list[Path]:
    """The shard files of a split's folder, in order."""
    return sorted(Path(folder).glob("*.arrow"))


def verify_shard(shard: str | Path, manifest: str | Path, split: str) -> None:
    """Check a split's folder against its manifest: the files it recorded, each with the sha256
    recorded when it was written. A file changed since (a flipped bit, a partial copy), missing
    or added stops the job with a ShardError naming it."""
    shard, manifest = Path(shard), Path(manifest)
    record = read_json(manifest)["splits"][split]
    expected = {manifest.parent / f["file"]: f["sha256"] for f in record["files"]}
    found = split_files(shard)
    if found != sorted(expected):
        extra = sorted(set(found) - set(expected)) or sorted(set(expected) - set(found))
        raise ShardError(
            f"{extra[0]}: the files of {shard} are not the {len(expected)} recorded in "
            f"{manifest} (delete {shard.parent} and rerun to rebuild it)"
        )
    for path in found:
        actual = sha256_file(path)
        if actual != expected[path]:
            raise ShardError(
                f"{path}: sha256 {actual[:16]}... does not match {expected[path][:16]}... "
                f"recorded in {manifest}; the shard changed after it was written (delete "
                f"{shard.parent} and rerun to rebuild it)"
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


def _file_blocks(path: Path) -> np.ndarray:
    column = read_arrow(path)["tokens"].combine_chunks()
    seq_len = column.type.list_size
    return column.values.to_numpy(zero_copy_only=True).reshape(-1, seq_len)


class ShardBlocks:
    """The (n_blocks, seq_len) blocks of several memory-mapped files, indexed as one array:
    an integer, a slice or an integer array of block indices gives the same as indexing the
    concatenation (a copy of the rows asked for; the files are never read whole)."""

    def __init__(self, parts: list[np.ndarray]) -> None:
        self.parts = parts
        self.starts = np.cumsum([0] + [len(p) for p in parts])  # (n_files + 1,)
        self.shape = (int(self.starts[-1]), int(parts[0].shape[1]))
        self.dtype = parts[0].dtype
        self.ndim = 2

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: Any) -> np.ndarray:
        if isinstance(index, slice):
            index = np.arange(len(self))[index]
        index = np.asarray(index)
        if index.dtype.kind not in "iu":
            raise IndexError(f"shard blocks are indexed by integers, got {index.dtype}")
        flat = index.reshape(-1).astype(np.int64)
        flat = np.where(flat < 0, flat + len(self), flat)
        if flat.size and (flat.min() < 0 or flat.max() >= len(self)):
            raise IndexError(f"block index out of range for {len(self)} blocks")
        out = np.empty((flat.size, self.shape[1]), dtype=self.dtype)
        part = np.searchsorted(self.starts, flat, side="right") - 1
        for k in np.unique(part):
            rows = np.flatnonzero(part == k)
            out[rows] = self.parts[k][flat[rows] - self.starts[k]]
        return out.reshape(*index.shape, self.shape[1])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        blocks = self[np.arange(len(self))]
        return blocks if dtype is None else blocks.astype(dtype)


def read_blocks(path: str | Path) -> np.ndarray | ShardBlocks:
    """Memory-map a split (its folder, or one shard file) and return its (n_blocks, seq_len)
    blocks: the file's token view itself (no copy) when there is one file, else a ShardBlocks
    over the files in order."""
    path = Path(path)
    files = split_files(path) if path.is_dir() else [path]
    if not files:
        raise ShardError(f"{path}: no shard files (*.arrow) in the split's folder")
    parts = [_file_blocks(f) for f in files]
    return parts[0] if len(parts) == 1 else ShardBlocks(parts)


def blocks_per_file(file_mb: float, seq_len: int, dtype: np.dtype) -> int:
    """Blocks in one shard file of at most `file_mb` MB of tokens (at least one block)."""
    if not file_mb > 0:
        raise ShardError(f"config key 'shards.file_mb': {file_mb} must be above 0 (MB per file)")
    return max(1, int(file_mb * 1e6 // (seq_len * dtype.itemsize)))


def _write_split(
    tokens: np.ndarray, out_dir: Path, split: str, per_file: int
) -> list[dict[str, Any]]:
    """Write a split's (n_blocks, seq_len) blocks as files of at most `per_file` blocks in
    `out_dir/split/`; return each file's record (path relative to out_dir, sha256, blocks)."""
    files = []
    for k, start in enumerate(range(0, len(tokens), per_file)):
        name = f"{split}/{k:05d}.arrow"
        write_blocks(tokens[start : start + per_file], out_dir / name)
        n_blocks = min(per_file, len(tokens) - start)
        files.append({"file": name, "sha256": sha256_file(out_dir / name), "n_blocks": n_blocks})
    return files


def split_sha256(files: list[dict[str, Any]]) -> str:
    """A split's checksum: its one file's sha256, or the sha256 of its files' joined in order."""
    if len(files) == 1:
        return str(files[0]["sha256"])
    return hashlib.sha256("\n".join(f["sha256"] for f in files).encode()).hexdigest()


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
    file_mb: float = DEFAULT_FILE_MB,
) -> dict[str, Any]:
    """Write the folders `train/` and `test/` of shard files (each at most `file_mb` MB of
    tokens) plus `manifest.json`; return the manifest. The manifest carries what prepare
    recorded about the documents (key `prepare`: the cap, what was dropped and why) when
    docs.parquet holds it.

    In bounded memory: documents stream from docs.parquet in record batches of `batch_docs`,
    are encoded by the `tokenizers` batch encoder (its threads: RAYON_NUM_THREADS), and their
    tokens are appended to a file per split; each split's blocks are then written from that
    file memory-mapped. Memory holds one batch of documents, whatever the domain's size; the
    files' blocks, concatenated, are those `pack_documents` over the whole split gives, and a
    split that fits in one file is byte for byte the one-file shard."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer, eod = load_tokenizer(tokenizer_path)
    dtype = token_dtype(tokenizer.get_vocab_size())
    per_file = blocks_per_file(file_mb, seq_len, dtype)
    prepared = prepare_record(pq.read_schema(docs_path))
    manifest: dict[str, Any] = {
        "seq_len": seq_len,
        "vocab_size": tokenizer.get_vocab_size(),
        "dtype": str(dtype),
        "tokenizer_sha256": sha256_file(tokenizer_path),
        "file_blocks": per_file,
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
            shutil.rmtree(out_dir / split, ignore_errors=True)  # no file of an earlier build
            tokens = np.memmap(raw[split], dtype=dtype, mode="r", shape=(n_tokens,))
            blocks = tokens[: n_blocks * seq_len].reshape(n_blocks, seq_len)
            files = _write_split(blocks, out_dir, split, per_file)
            del tokens, blocks  # the map closes before the temporary file goes
            n_bytes = counts[split]["n_bytes"]
            manifest["splits"][split] = {
                "files": files,
                "sha256": split_sha256(files),
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
