"""Near-duplicates across the train/test split: test documents that nearly repeat a train one.

Exact duplicates cannot straddle the split (it is a function of the normalised text), but an
edited copy (a typo fixed, a sentence added, a title changed) can, and then the test loss
partly measures memorisation. Two documents are near-duplicates when the Jaccard similarity of
their sets of word shingles (`shingle` consecutive lower-cased words) is at least `threshold`,
the measure of Lee et al. (2022, "Deduplicating training data makes language models better").
MinHash LSH (datasketch) finds candidate train documents for every test document without
comparing all pairs; each candidate is then confirmed by the exact Jaccard similarity, so no
pair below the threshold is counted. The LSH bands are tuned for recall: a pair at the
threshold is found with probability ~0.98 at 128 permutations, one 0.05 above it ~0.999.
Everything is deterministic: a fixed MinHash seed and sorted ids.

Only the domain's own train split is searched; the model also trains on the other domains, and
a test document's near-copy in another domain's train split is not looked for here.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

_WORDS = re.compile(r"\w+")
MINHASH_SEED = 1  # fixed: the same documents always give the same signatures
# LSH band weights (false positive, false negative): favour recall; the exact Jaccard check
# removes the false positives afterwards.
_LSH_WEIGHTS = (0.02, 0.98)


@dataclass(frozen=True)
class NearDuplicates:
    """The near-duplicate check of prepare (config key `prepare.near_duplicates`)."""

    threshold: float = 0.8  # Jaccard similarity of shingle sets from which two match (0-0.95]
    drop: bool = True  # drop matched test documents (False: only count them)
    shingle: int = 5  # words per shingle
    num_perm: int = 128  # MinHash permutations (more: better recall near the threshold, slower)

    @classmethod
    def of(cls, spec: NearDuplicates | dict[str, Any] | None) -> NearDuplicates:
        """The check from its config mapping (None: the defaults)."""
        return spec if isinstance(spec, cls) else cls(**(spec or {}))


def shingles(text: str, size: int) -> set[bytes]:
    """The set of `size`-word shingles of a text (lower-cased \\w+ words); a text of fewer
    words is one shingle of all of them."""
    words = _WORDS.findall(text.lower())
    if len(words) <= size:
        return {" ".join(words).encode()}
    return {" ".join(words[i : i + size]).encode() for i in range(len(words) - size + 1)}


def jaccard(a: set[bytes], b: set[bytes]) -> float:
    """|a & b| / |a | b| (two empty sets: 1)."""
    union = len(a | b)
    return len(a & b) / union if union else 1.0


class NearDuplicateSearch:
    """The search in a form that streams: train documents are added batch by batch, then test
    documents are queried batch by batch for candidates, and the candidates are confirmed by
    the exact Jaccard similarity (`confirm`) as the train documents they name are read again.

    The LSH index is datasketch's banding (its `MinHashLSH` chooses the b bands of r rows for
    the threshold and weights) kept compact: each train document's band is an 8-byte blake2b
    key of its r MinHash values, in one sorted numpy array per band, so memory is b x 16 bytes
    per train document (272 at the defaults; a MinHashLSH holds about 6 kB) and never a text.
    A document is a candidate where any band's key is equal, which every band equal in
    MinHashLSH also gives (a key collision only adds a candidate, which the exact check then
    rejects). The test documents with a candidate keep their shingle sets until `confirm`.
    Keys are the documents' positions in the domain (any ints)."""

    def __init__(self, check: NearDuplicates) -> None:
        from datasketch import MinHashLSH

        self.check = check
        bands = MinHashLSH(threshold=check.threshold, num_perm=check.num_perm, weights=_LSH_WEIGHTS)
        self.bands, self.rows = bands.b, bands.r
        self._keys: list[list[np.ndarray]] = [[] for _ in range(self.bands)]  # band: chunks
        self._positions: list[np.ndarray] = []  # the chunks' positions
        self._index: list[tuple[np.ndarray, np.ndarray]] | None = None  # per band: sorted

    def _signed(self, texts: Sequence[str]) -> tuple[list[set[bytes]], np.ndarray]:
        """(shingle sets, (n, bands) uint64 band keys) of some documents."""
        from datasketch import MinHash

        sets = [shingles(text, self.check.shingle) for text in texts]
        keys = np.empty((len(sets), self.bands), dtype=np.uint64)
        for i, signature in enumerate(
            MinHash.bulk(sets, num_perm=self.check.num_perm, seed=MINHASH_SEED)
        ):
            values = signature.hashvalues[: self.bands * self.rows].reshape(self.bands, self.rows)
            for band in range(self.bands):
                digest = hashlib.blake2b(values[band].tobytes(), digest_size=8).digest()
                keys[i, band] = int.from_bytes(digest, "little")
        return sets, keys

    def add_train(self, positions: Sequence[int], texts: Sequence[str]) -> None:
        """Index train documents (all of them before the first `candidates`)."""
        if self._index is not None:
            raise RuntimeError("train documents added after the first query")
        if len(texts):
            keys = self._signed(texts)[1]
            for band in range(self.bands):
                self._keys[band].append(keys[:, band].copy())
            self._positions.append(np.asarray(positions, dtype=np.int64))

    def _sorted_bands(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each band's keys sorted, with their positions (built once, band by band, each
        band's chunks freed as it is sorted)."""
        if self._index is None:
            positions = (
                np.concatenate(self._positions) if self._positions else np.zeros(0, np.int64)
            )
            self._index, self._positions = [], []
            for band in range(self.bands):
                chunks, self._keys[band] = self._keys[band], []
                keys = np.concatenate(chunks) if chunks else np.zeros(0, np.uint64)
                del chunks
                order = np.argsort(keys, kind="stable")
                self._index.append((keys[order], positions[order]))
        return self._index

    def candidates(
        self, positions: Sequence[int], texts: Sequence[str]
    ) -> dict[int, tuple[set[bytes], list[int]]]:
        """{test position: (its shingle set, candidate train positions ascending)} for the test
        documents with at least one candidate."""
        index = self._sorted_bands()
        sets, keys = self._signed(texts)
        near: list[set[int]] = [set() for _ in texts]
        for band, (sorted_keys, train) in enumerate(index):
            low = np.searchsorted(sorted_keys, keys[:, band], side="left")
            high = np.searchsorted(sorted_keys, keys[:, band], side="right")
            for i in np.flatnonzero(high > low):
                near[i].update(train[low[i] : high[i]].tolist())
        return {
            position: (shingle_set, sorted(found))
            for position, shingle_set, found in zip(positions, sets, near, strict=True)
            if found
        }

    def confirm(
        self,
        pending: dict[int, tuple[set[bytes], list[int]]],
        train: Iterable[tuple[int, str]],
    ) -> list[int]:
        """Test positions (ascending) of `pending` (from `candidates`) whose shingle set is at
        least `threshold` Jaccard-similar to one of their candidates'. `train` yields (position,
        text) of the candidate train documents, each once, in any order; each one's shingle set
        is made, compared with the tests that name it, and dropped."""
        waiting: dict[int, list[int]] = {}
        for position, (_, near) in pending.items():
            for j in near:
                waiting.setdefault(j, []).append(position)
        found: set[int] = set()
        for j, text in train:
            train_set = shingles(text, self.check.shingle)
            for position in waiting.get(j, ()):
                if position not in found and jaccard(pending[position][0], train_set) >= (
                    self.check.threshold
                ):
                    found.add(position)
        return sorted(found)
