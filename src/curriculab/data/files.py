"""Local data files: which kind each is, and what is wrong with a bad one, in one line.

`datasets` reads the files; this module checks them first, so that a bad file stops the job
with a line naming the file (and the line or byte) rather than a `datasets` traceback. The
policy, per kind of problem (docs/reliability.md):

- kind by extension: `.jsonl` / `.json` (JSON Lines, or one JSON array of records), `.parquet`,
  `.txt`, each optionally compressed as `.gz`, `.bz2`, `.xz` or `.zst` (not Parquet, which
  compresses inside);
- a malformed record (a line that is not a JSON object, a cut-off last line) fails, naming file
  and line; `skip_malformed: true` on the source skips such lines instead and logs how many;
- an empty file (no bytes, only white space, or a Parquet file of no rows) is left out with a
  warning in the log (sharded data often has an empty shard); a source whose every file is
  empty fails, naming them;
- a file that is not what its extension says (not Parquet, not the compression) fails, naming
  the file; so does a file that cannot be read (naming the OS error);
- a glob that matches a directory fails before any job (`files_builder`).
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import sys
from pathlib import Path
from typing import IO, Any

from curriculab.errors import CurriculabError, first_line

KINDS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".txt": "text"}
COMPRESSIONS = (".gz", ".bz2", ".xz", ".zst")


class SourceError(CurriculabError, RuntimeError):
    """A source cannot deliver documents; the message is one line naming what is wrong."""


class EmptyFile(SourceError):
    """A file with nothing in it: left out of its source with a warning."""


def _suffixes(path: str | Path) -> tuple[str | None, str | None]:
    """(the kind's suffix, the compression's suffix) of a file name, lower case:
    "a.JSONL.gz" -> (".jsonl", ".gz")."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    compression = suffixes.pop() if suffixes and suffixes[-1] in COMPRESSIONS else None
    return (suffixes[-1] if suffixes else None), compression


def kind_of(path: str | Path) -> tuple[str | None, str | None]:
    """(`datasets` builder or None, compression suffix or None) of a file, by its name."""
    suffix, compression = _suffixes(path)
    builder = KINDS.get(suffix)
    if builder == "parquet" and compression:
        return None, compression  # Parquet compresses its pages itself; datasets cannot unwrap it
    return builder, compression


def _open(path: Path, compression: str | None) -> IO[bytes]:
    if compression == ".gz":
        return gzip.open(path, "rb")
    if compression == ".bz2":
        return bz2.open(path, "rb")
    if compression == ".xz":
        return lzma.open(path, "rb")
    if compression == ".zst":
        import zstandard

        return zstandard.open(path, "rb")
    return open(path, "rb")


def read_bytes(path: str | Path) -> bytes:
    """The file's content, decompressed; a SourceError names the file when it cannot be read
    or is not the compression its name says."""
    path = Path(path)
    compression = _suffixes(path)[1]
    try:
        with _open(path, compression) as stream:
            return stream.read()
    except (OSError, EOFError, lzma.LZMAError) as error:
        if isinstance(error, FileNotFoundError | PermissionError | IsADirectoryError):
            raise SourceError(f"{path}: cannot be read ({first_line(error)})") from None
        what = f"a valid {compression} file" if compression else "readable"
        raise SourceError(f"{path}: not {what} ({first_line(error)})") from None
    except Exception as error:  # zstandard raises its own ZstdError
        if compression == ".zst" and type(error).__name__ == "ZstdError":
            raise SourceError(f"{path}: not a valid .zst file ({first_line(error)})") from None
        raise


def _decode(path: Path, data: bytes, errors: str) -> str:
    """UTF-8 text; invalid bytes fail naming the byte offset (`strict`) or become U+FFFD with a
    warning in the log (`replace`)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        if errors == "strict":
            raise SourceError(
                f"{path}: invalid UTF-8 at byte {error.start} ({data[error.start : error.end]!r}); "
                "fix the file, or set encoding_errors: replace on this source"
            ) from None
    text = data.decode("utf-8", errors="replace")
    bad = text.count("\ufffd") - data.count("\ufffd".encode())
    print(f"warning: {path}: {bad} invalid UTF-8 sequence(s) replaced with U+FFFD", file=sys.stderr)
    return text


def json_kind(value: Any) -> str:
    """What a JSON value is, as a message says it: "an array", "a string", "an object"..."""
    kinds = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    return "null" if value is None else kinds.get(type(value), "a number")


def json_records(path: Path, text: str, skip_malformed: bool) -> tuple[list[str], int]:
    """(the JSON Lines of the file that are objects, malformed lines skipped). A JSON file that
    is one array of objects is returned as lines too. Fails naming file and line, unless
    skip_malformed."""
    stripped = text.strip()
    if stripped.startswith("[") and _suffixes(path)[0] != ".jsonl":
        try:
            records = json.loads(stripped)
        except json.JSONDecodeError as error:
            raise SourceError(
                f"{path}: not valid JSON at line {error.lineno}, column {error.colno} "
                f"({error.msg}); expected one array of records or JSON Lines"
            ) from None
        bad = [i for i, record in enumerate(records) if not isinstance(record, dict)]
        if bad and not skip_malformed:
            raise SourceError(
                f"{path}: record {bad[0]} of the array is {json_kind(records[bad[0]])}, "
                "expected an object (or set skip_malformed: true on the source)"
            )
        kept = [json.dumps(r, ensure_ascii=False) for r in records if isinstance(r, dict)]
        return kept, len(bad)
    kept, skipped = [], 0
    lines = text.split("\n")  # JSON Lines ends lines with \n only (a record may hold U+2028)
    while lines and not lines[-1].strip():
        lines.pop()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            problem = None if isinstance(record, dict) else f"{json_kind(record)}, not an object"
        except json.JSONDecodeError as error:
            problem = f"not valid JSON ({error.msg}: column {error.colno})"
        if problem is None:
            kept.append(line)
        elif skip_malformed:
            skipped += 1
        else:
            raise SourceError(
                f"{path}: line {number} is {problem}"
                + ("; the file may be cut off" if number == len(lines) else "")
                + " (or set skip_malformed: true on the source)"
            )
    return kept, skipped


def check_parquet(path: Path) -> int:
    """Rows of a Parquet file; a SourceError names the file when it is not valid Parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        rows = pq.ParquetFile(path).metadata.num_rows
    except (pa.ArrowInvalid, OSError) as error:
        raise SourceError(f"{path}: not a valid Parquet file ({first_line(error)})") from None
    return rows


def check_file(path: str | Path, source: dict[str, Any]) -> tuple[list[str] | None, int]:
    """Check one file of a files source: (its JSON Lines records, or None for other kinds;
    malformed records skipped). Raises SourceError naming the file; EmptyFile when it holds
    nothing."""
    path = Path(path)
    builder, _ = kind_of(path)
    if builder == "parquet":
        if check_parquet(path) == 0:
            raise EmptyFile(f"{path}: the file holds no rows")
        return None, 0
    text = _decode(path, read_bytes(path), source.get("encoding_errors", "strict"))
    if not text.strip():
        raise EmptyFile(f"{path}: the file is empty")
    if builder != "json":  # text (or csv through an hf source): any UTF-8 text reads
        return None, 0
    records, skipped = json_records(path, text, source.get("skip_malformed", False))
    if skipped:
        print(f"warning: {path}: skipped {skipped} malformed record(s)", file=sys.stderr)
    if not records:
        raise SourceError(f"{path}: no record is a JSON object; nothing to read")
    return records, skipped


def check_files(
    paths: list[str], source: dict[str, Any], where: str
) -> dict[str, list[str] | None]:
    """check_file on every path: {path: records kept where some were skipped, else None}, with
    empty files left out (a warning each). Every file empty: a SourceError naming them."""
    checked: dict[str, list[str] | None] = {}
    empty = []
    for path in paths:
        try:
            records, skipped = check_file(path, source)
        except EmptyFile as error:
            print(f"warning: {error}; left out", file=sys.stderr)
            empty.append(path)
            continue
        checked[path] = records if skipped else None
    if not checked:
        raise SourceError(f"{where}: every file is empty ({', '.join(empty)})")
    return checked
