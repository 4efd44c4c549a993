"""Small I/O helpers shared by every stage: atomic writes, hashing, JSON, YAML."""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml

from curriculab.errors import ConfigError


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `final`; rename it to `final` only if the block succeeds.

    A crash or an exception leaves no file under the final name, so no later stage can read a
    half-written result. Works for files and for directories. Temporaries that a killed writer
    of the same `final` left behind (`.NAME.*.tmp`) are removed first: one job owns an output.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(f".{glob.escape(final.name)}.*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    target = tmp / final.name
    try:
        yield target
        if final.is_dir() and not final.is_symlink():
            shutil.rmtree(final)
        os.replace(target, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_json(path: str | os.PathLike[str], payload: Any) -> None:
    """Write `payload` as pretty, key-sorted JSON, atomically (same payload, same bytes)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_arrow(table: pa.Table, path: str | os.PathLike[str]) -> None:
    """Write `table` as one record batch of an Arrow IPC file (memory-mappable), atomically."""
    with (
        atomic_path(path) as tmp,
        pa.OSFile(str(tmp), "wb") as sink,
        pa.ipc.new_file(sink, table.schema) as writer,
    ):
        writer.write_table(table, max_chunksize=max(len(table), 1))


def read_arrow(path: str | os.PathLike[str]) -> pa.Table:
    """Memory-map an Arrow IPC file written by `write_arrow`."""
    return pa.ipc.open_file(pa.memory_map(str(path), "r")).read_all()


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file written by `write_json`."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def sha256_file(path: str | os.PathLike[str], chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_text(text: str) -> str:
    """Hex sha256 of a string's UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key given twice in one mapping (PyYAML keeps the last one
    silently, so a copied-and-edited domain block would replace the original)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ConfigError(
                    f"{self.name} line {line}: key {key!r} is given twice in one mapping "
                    f"(first on line {seen[key]}); the second would silently replace the first"
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML mapping (config or schema); a key given twice is a ConfigError."""
    with open(path, encoding="utf-8") as handle:
        loaded = yaml.load(handle, Loader=_UniqueKeyLoader)  # a SafeLoader: no arbitrary objects
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a YAML mapping at the top level")
    return loaded
