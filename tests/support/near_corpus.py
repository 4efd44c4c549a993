"""A corpus with known near-duplicates, shared by the prepare tests (tests/data)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def raw_table(texts: list[str]) -> pa.Table:
    return pa.table(
        {"source_index": list(range(len(texts))), "text": texts, "source": ["test"] * len(texts)}
    )


def random_words(rng: np.random.Generator, n: int) -> list[str]:
    return [f"w{k}" for k in rng.integers(0, 5000, size=n)]


def near_corpus(seed: int = 0) -> tuple[list[str], dict[str, str], set[str]]:
    """(texts, {edited copy: its original}, copies edited too far to match): 300 unrelated
    documents of 100 random words; for 200 of them a near-copy (one word replaced, or five
    words appended: Jaccard of 5-word shingles about 0.9), for the other 100 a far copy (six
    words replaced, spread out: about 0.5, below the 0.8 threshold)."""
    rng = np.random.default_rng(seed)
    originals = [random_words(rng, 100) for _ in range(300)]
    texts = [" ".join(words) for words in originals]
    near, far = {}, set()
    for i, words in enumerate(originals):
        copy = list(words)
        if i < 100:
            copy[int(rng.integers(10, 90))] = "edited"
        elif i < 200:
            copy += ["an", "added", "closing", "sentence", "here"]
        else:
            for position in range(8, 100, 16):
                copy[position] = f"x{position}"
        texts.append(" ".join(copy))
        if i < 200:
            near[texts[-1]] = texts[i]
        else:
            far.add(texts[-1])
    return texts, near, far
