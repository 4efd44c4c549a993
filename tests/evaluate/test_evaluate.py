"""Evaluation: the unigram reference of the tokens a cell trained on, and eval.json."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from curriculab.data.shards import write_blocks
from curriculab.evaluate import stream_token_counts, unigram_loss
from curriculab.io import write_arrow
from curriculab.streams.build import Order
from curriculab.streams.stream_file import stream_table


def test_unigram_loss_is_the_add_half_cross_entropy() -> None:
    counts = np.array([5, 0, 3, 2])
    blocks = np.array([[1, 0, 0, 2], [3, 2, 1, 0]])
    predicted = [0, 0, 2, 2, 1, 0]  # every token but each block's first
    p = (counts + 0.5) / (counts.sum() + 0.5 * len(counts))
    expected = -sum(math.log(p[t]) for t in predicted) / len(predicted)
    assert unigram_loss(counts, blocks) == pytest.approx(expected)


def test_unigram_of_the_test_distribution_approaches_its_entropy() -> None:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(50))
    tokens = rng.choice(50, size=(2000, 33), p=probs)
    counts = np.bincount(rng.choice(50, size=200_000, p=probs), minlength=50)
    entropy = -(probs * np.log(probs)).sum()
    assert unigram_loss(counts, tokens) == pytest.approx(entropy, abs=0.02)
    uniform = np.ones(50, dtype=np.int64)  # knows nothing: log V
    assert unigram_loss(uniform, tokens) == pytest.approx(math.log(50), rel=1e-6)


def test_stream_counts_every_use_of_a_block(tmp_path: Path) -> None:
    shards = {}
    for name, base in (("a", 0), ("b", 10)):
        shards[name] = tmp_path / f"{name}.arrow"
        write_blocks(np.arange(base, base + 8, dtype=np.uint16).reshape(4, 2), shards[name])
    order = Order(
        domains=np.array([0, 1, 0, 0], dtype=np.int32),
        blocks=np.array([1, 3, 1, 2]),  # block 1 of "a" twice (a second epoch)
        epochs=np.array([0, 0, 1, 0], dtype=np.int32),
    )
    stream = tmp_path / "stream.arrow"
    write_arrow(stream_table(["a", "b"], order), stream)
    counts = stream_token_counts(stream, shards, vocab_size=20)
    expected = Counter([2, 3, 16, 17, 2, 3, 4, 5])
    assert counts.tolist() == [expected.get(t, 0) for t in range(20)]
    assert pa.ipc.open_file(stream).read_all().num_rows == 4
