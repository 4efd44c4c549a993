"""Which documents a `max_docs` cap keeps: a random subset by content hash, or the first ones.

Many sources list their documents by topic (the Wikipedia summaries of the default study go
actors, deserts, ..., mathematics), so the first N documents are a topical subset while the test
split spans every topic. `random` (the default) keeps the N documents with the smallest salted
content hash instead: a deterministic random subset that does not depend on the source's order,
and that grows by adding documents when N grows (the N smallest hashes are among the N + k
smallest). `first` keeps the first N in source order, as the cap did before.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from curriculab.data.prepare import normalise

SAMPLES = ("random", "first")  # the values of a domain's `sample` key
# Salt: the sampling hash is independent of the doc_id digits that decide the train/test split
# and the subset buckets (data/prepare.py), so a capped corpus keeps its test share.
_SALT = b"curriculab max_docs sample\0"


@dataclass(frozen=True)
class Capped:
    """The documents a cap kept, in source order, with where they came from."""

    texts: list[str]
    indices: list[int]  # each document's 0-based position in the source
    read: int | None  # documents the source yielded (None: `first` stopped before its end)
    max_docs: int | None
    sample: str

    def info(self) -> dict[str, Any]:
        """What the report's Data section states about the cap (stored with the raw documents)."""
        return {
            "max_docs": self.max_docs,
            "sample": self.sample,
            "source_documents": self.read,
            "kept": len(self.texts),
        }


def sample_key(text: str) -> int:
    """A document's sampling rank: 128 bits of a salted sha256 of its normalised text."""
    digest = hashlib.sha256(_SALT + normalise(text).encode()).digest()
    return int.from_bytes(digest[:16], "big")


def _smallest(documents: Iterable[str], n: int) -> tuple[list[tuple[int, str]], int]:
    """((index, text) of the n documents with the smallest distinct sample keys, documents read).

    One pass with a heap of n entries: never more than n documents in memory. A document whose
    key is already kept (the same text after normalisation) is skipped, so the cap counts
    distinct documents; one evicted earlier has a key above every kept one, so it cannot return.
    """
    heap: list[tuple[int, int, str]] = []  # (-key, -index, text): the largest kept key on top
    kept: set[int] = set()
    read = 0
    for index, text in enumerate(documents):
        read += 1
        key = sample_key(text)
        if key in kept:
            continue
        if len(heap) < n:
            heapq.heappush(heap, (-key, -index, text))
        elif key < -heap[0][0]:
            evicted = heapq.heapreplace(heap, (-key, -index, text))
            kept.discard(-evicted[0])
        else:
            continue
        kept.add(key)
    return sorted((-index, text) for _, index, text in heap), read


def cap_documents(documents: Iterable[str], max_docs: int | None, sample: str) -> Capped:
    """Keep at most `max_docs` documents (None: all) chosen by `sample` (random or first)."""
    if sample not in SAMPLES:
        raise ValueError(f"sample must be one of {list(SAMPLES)}, got {sample!r}")
    if max_docs is None:
        texts = list(documents)
        return Capped(texts, list(range(len(texts))), len(texts), None, sample)
    if sample == "first":  # one beyond the cap tells whether the source had more
        texts = list(itertools.islice(documents, max_docs + 1))
        read = len(texts) if len(texts) <= max_docs else None
        texts = texts[:max_docs]
        return Capped(texts, list(range(len(texts))), read, max_docs, sample)
    picked, read = _smallest(documents, max_docs)
    return Capped([t for _, t in picked], [i for i, _ in picked], read, max_docs, sample)
