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

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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


def near_duplicate_tests(
    texts: Sequence[str], splits: Sequence[str], check: NearDuplicates
) -> list[int]:
    """Positions (ascending) of the test documents with a near-duplicate among the train ones."""
    from datasketch import MinHash, MinHashLSH

    sets = [shingles(text, check.shingle) for text in texts]
    signatures = MinHash.bulk(sets, num_perm=check.num_perm, seed=MINHASH_SEED)
    lsh = MinHashLSH(threshold=check.threshold, num_perm=check.num_perm, weights=_LSH_WEIGHTS)
    for i, split in enumerate(splits):
        if split == "train":
            lsh.insert(i, signatures[i])
    found = []
    for i, split in enumerate(splits):
        if split != "test":
            continue
        candidates = sorted(lsh.query(signatures[i]))
        if any(jaccard(sets[i], sets[j]) >= check.threshold for j in candidates):
            found.append(i)
    return found
