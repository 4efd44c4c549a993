"""Evaluation of a cell: its final test losses beside a reference point, in eval.json.

The model's final test loss is measured by the training job on the weights it holds (the same
weights it saves), so no second process pays for loading a framework and the model again. This
stage adds what the loss means: the cross-entropy of a **unigram model of the very tokens the
cell trained on** (its stream over the train shards), on the same test tokens. A model that is
not clearly below its unigram reference has learned token frequencies, not language; an
ordering effect on such a model says little about what was learned.

The unigram is add-half (Krichevsky-Trofimov) smoothed over the tokenizer's vocabulary:
p(v) = (c_v + 1/2) / (N + V/2). It is scored on the tokens the model predicts: every token of a
test block but the first (a causal model's loss has no prediction for position 0).
Torch-free: numpy over memory-mapped shards.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from curriculab.data.shards import read_blocks, verify_shard
from curriculab.errors import job_log
from curriculab.io import read_json, write_json
from curriculab.streams.stream_file import read_stream

SMOOTHING = 0.5  # add-half: the Krichevsky-Trofimov estimator
_CHUNK_ROWS = 1 << 16  # stream positions counted at a time (bounded memory for long streams)


def spread_subset(n_blocks: int, k: int | None) -> np.ndarray:
    """k block indices spread evenly over a shard (all of them when k is None or >= n)."""
    if k is None or k >= n_blocks:
        return np.arange(n_blocks)
    return np.unique(np.linspace(0, n_blocks - 1, k).round().astype(np.int64))


def bits_per_byte(loss: float, bytes_per_token: float) -> float:
    """Convert nats/token to bits/byte, which does not depend on the tokenizer."""
    return loss / math.log(2) / bytes_per_token


def stream_token_counts(
    stream: str | Path, train_shards: dict[str, str | Path], vocab_size: int
) -> np.ndarray:
    """(V,) how often each token id occurs in the training sequences of a stream, counting a
    repeated block once per use."""
    names, domains, blocks = read_stream(stream)
    counts = np.zeros(vocab_size, dtype=np.int64)
    for k, name in enumerate(names):
        shard = read_blocks(train_shards[name])
        used = blocks[domains == k]
        for start in range(0, len(used), _CHUNK_ROWS):
            rows = shard[used[start : start + _CHUNK_ROWS]]
            counts += np.bincount(rows.ravel(), minlength=vocab_size)[:vocab_size]
    return counts


def unigram_loss(counts: np.ndarray, blocks: np.ndarray, alpha: float = SMOOTHING) -> float:
    """Cross-entropy (nats/token) of the add-`alpha` unigram of `counts` on the predicted
    tokens of `blocks` (every token but each block's first)."""
    log_p = np.log(counts + alpha) - math.log(counts.sum() + alpha * len(counts))
    predicted = np.bincount(blocks[:, 1:].ravel(), minlength=len(counts))[: len(counts)]
    return float(-(predicted @ log_p) / predicted.sum())


def evaluate_cell(
    metrics_path: str | Path,
    stream: str | Path,
    train_shards: dict[str, str | Path],
    test_shards: dict[str, str | Path],
    manifests: dict[str, str | Path],
    eval_blocks: int,
    final_eval_blocks: int | None,
    out_path: str | Path,
) -> dict[str, Any]:
    """Write eval.json: per domain the final test loss (from the training job's metrics.json)
    and its unigram reference, on the final-evaluation blocks and on the learning-curve blocks
    (for the reference line on the curves)."""
    for name in sorted(test_shards):
        verify_shard(train_shards[name], manifests[name], "train")
        verify_shard(test_shards[name], manifests[name], "test")
    loaded = {name: read_json(path) for name, path in manifests.items()}
    vocab_size = next(iter(loaded.values()))["vocab_size"]
    counts = stream_token_counts(stream, train_shards, vocab_size)
    final = read_json(metrics_path)["final_test"]
    results: dict[str, Any] = {}
    for name in sorted(test_shards):
        blocks = read_blocks(test_shards[name])
        reference = unigram_loss(counts, blocks[spread_subset(len(blocks), final_eval_blocks)])
        bytes_per_token = loaded[name]["splits"]["test"]["bytes_per_token"]
        results[name] = {
            **final[name],
            "unigram_loss": reference,
            "unigram_bits_per_byte": bits_per_byte(reference, bytes_per_token),
            "unigram_curve_loss": unigram_loss(
                counts, blocks[spread_subset(len(blocks), eval_blocks)]
            ),
            "below_unigram": reference - final[name]["loss"],
        }
    payload = {
        "domains": results,
        "reference": {
            "kind": "unigram of the cell's training tokens",
            "smoothing": f"add-{SMOOTHING:g}",
            "vocab_size": vocab_size,
            "training_tokens": int(counts.sum()),
        },
    }
    write_json(out_path, payload)
    return payload


def evaluate_job(input: Any, output: Any, params: Any, log: Any) -> None:
    """Rule evaluate's body (a `run:` block in Snakemake's process): the cell's eval.json; the
    result also goes to the log."""
    with job_log(log[0]) as log_file:
        result = evaluate_cell(
            input.metrics,
            input.stream,
            dict(zip(params.domains, input.train_shards, strict=True)),
            dict(zip(params.domains, input.tests, strict=True)),
            dict(zip(params.domains, input.manifests, strict=True)),
            params.eval_blocks,
            params.final_eval_blocks,
            output.evaluation,
        )
        print(json.dumps(result, indent=2), file=log_file)
