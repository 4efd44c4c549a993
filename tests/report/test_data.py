"""The report's Data section: which documents each domain read, and what prepare dropped."""

from __future__ import annotations

import html
from pathlib import Path

import polars as pl

from curriculab.data.prepare import run_prepare
from curriculab.data.shards import build_shards
from curriculab.data.sources import read_capped, write_raw
from curriculab.data.tokenizer import run_tokenizer
from curriculab.io import read_json
from curriculab.report.data import data_section, describe_cap, prepare_table


def _manifests(root: Path, caps: dict[str, tuple[int | None, str]]) -> list[Path]:
    """Run download (capped), prepare, tokenizer and shards in-process for synthetic domains
    of 150 documents each; return the shard manifests."""
    docs = []
    for name, (max_docs, sample) in caps.items():
        source = {"type": "synthetic", "topic": name, "n_docs": 150}
        write_raw(read_capped(source, max_docs, sample), source, root / f"{name}.parquet")
        docs.append(root / name / "docs.parquet")
        run_prepare(root / f"{name}.parquet", docs[-1], name, 0.2, 20)
    run_tokenizer(docs, 320, root / "tokenizer.json")
    for name, path in zip(caps, docs, strict=True):
        build_shards(path, root / "tokenizer.json", 32, root / "shards" / name)
    return [root / "shards" / name / "manifest.json" for name in caps]


def test_data_section_says_which_documents_each_domain_read(tmp_path: Path) -> None:
    caps = {"cooking": (None, "random"), "wiki": (100, "random"), "code": (60, "first")}
    manifests = _manifests(tmp_path, caps)
    assert read_json(manifests[1])["prepare"]["download"]["kept"] == 100  # shards carry it
    table = prepare_table(list(caps), manifests)
    read = dict(zip(table["domain"], table["documents read"], strict=True))
    assert read["cooking"] == "all 150"
    assert read["wiki"].startswith("100 of 150, a random subset by content hash")
    assert read["code"].startswith("the first 60 in source order")
    assert table["test near-duplicates of train"].to_list() == [0, 0, 0]
    data = pl.DataFrame({"domain": ["wiki"], "split": ["train"], "tokens": [1000]})
    page = html.unescape(data_section(data, table))
    assert read["wiki"] in page and "sample: first" in page
    assert "Jaccard similarity 0.8" in page and "5-word shingles" in page
    assert "Other domains' train splits are not searched" in page
    assert "outside subset" not in page  # no domain keeps hash buckets


def test_describe_cap_when_the_cap_is_not_reached_or_not_recorded() -> None:
    info = {"max_docs": 500, "sample": "random", "source_documents": 120, "kept": 118}
    assert describe_cap(info) == "all 118 distinct of 120 (max_docs 500 not reached)"
    assert describe_cap(None) == "not recorded"
    manifests_without = pl.DataFrame()
    assert "Documents read" not in data_section(
        pl.DataFrame({"domain": ["a"], "tokens": [1]}), manifests_without
    )
