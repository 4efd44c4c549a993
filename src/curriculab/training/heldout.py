"""Held-out losses of a model being trained: when to measure them, and how.

The learning curve is measured at step 0, at `eval_points` steps and at the end, on a fixed,
evenly spread subset of every domain's test blocks; the final test on `final_eval_blocks`. Both
run on the weights in memory (the same weights that are saved).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from curriculab.data.shards import read_blocks
from curriculab.evaluate import bits_per_byte, spread_subset


def eval_steps(total_steps: int, eval_points: int, spacing: str = "linear") -> list[int]:
    """Steps after which to evaluate: 0 (the initial model), `eval_points` more, and the end.

    Log spacing resolves the fast early drop and still reaches the end; linear spacing gives
    even coverage, which suits schedules that change late (a D1 window at the end).
    """
    if spacing == "log":
        spaced = np.geomspace(1, max(total_steps, 1), eval_points)
    else:
        spaced = np.linspace(0, total_steps, eval_points + 1)
    return sorted({0, total_steps, *np.round(spaced).astype(int).tolist()})


@torch.no_grad()
def mean_loss(
    model: torch.nn.Module,
    blocks: np.ndarray,
    device: torch.device,
    batch_size: int = 32,
    forward_size: int = 8,
) -> float:
    """Mean next-token loss (nats/token) over equal-length blocks, in eval mode: the loss of
    each `batch_size` blocks, weighted by their count. The logits of a batch are computed
    `forward_size` blocks at a time (a block's logits do not depend on the others in its batch;
    small forwards keep the activations in cache, ~10% faster on one CPU core) and the loss is
    taken over the whole batch at once, exactly as one forward's loss would be."""
    was_training = model.training
    model.eval()
    forward_size = forward_size if device.type == "cpu" else batch_size
    total, count = 0.0, 0
    for start in range(0, len(blocks), batch_size):
        batch = torch.from_numpy(blocks[start : start + batch_size].astype(np.int64)).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = torch.cat([model(input_ids=part).logits for part in batch.split(forward_size)])
            loss = model.loss_function(
                logits=logits, labels=batch, vocab_size=model.config.vocab_size
            )
        total += float(loss) * len(batch)
        count += len(batch)
    model.train(was_training)
    return total / count


def spread_sets(
    test_shards: dict[str, Path], max_blocks: int | None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{domain: (blocks, their indices in its test shard)}: `max_blocks` blocks spread evenly
    over every test shard (all of them when None), domains sorted. The learning curve's sets
    (`eval_blocks`) and the final test's (`final_eval_blocks`) are both taken this way."""
    sets = {}
    for name in sorted(test_shards):
        blocks = read_blocks(test_shards[name])
        index = spread_subset(len(blocks), max_blocks)
        sets[name] = (blocks[index], index)
    return sets


def test_record(
    loss: float, chosen: np.ndarray, index: np.ndarray, manifest: dict[str, Any]
) -> dict[str, Any]:
    """One domain's final test: loss (nats/token), bits per byte, what it was measured on."""
    test = manifest["splits"]["test"]
    return {
        "loss": loss,
        "bits_per_byte": bits_per_byte(loss, test["bytes_per_token"]),
        "n_blocks": len(chosen),
        "n_tokens": int(chosen.size),
        # Which blocks of which shard: two cells compare on the same test set only if equal.
        "blocks_sha256": blocks_fingerprint(test["sha256"], index),
    }


def curve_row(
    step: int, tokens_seen: int, name: str, loss: float, manifest: dict[str, Any]
) -> dict[str, Any]:
    """One point of the learning curve: a domain's held-out loss after `step` steps."""
    bpt = manifest["splits"]["test"]["bytes_per_token"]
    return {"step": step, "tokens_seen": tokens_seen, "domain": name, "loss": loss,
            "bits_per_byte": bits_per_byte(loss, bpt)}  # fmt: skip


def final_test(
    model: torch.nn.Module,
    test_shards: dict[str, Path],
    manifests: dict[str, dict[str, Any]],
    max_blocks: int | None,
    device: torch.device,
) -> dict[str, dict[str, Any]]:
    """Final test of every domain (`spread_sets`, `test_record`) of one model."""
    return {
        name: test_record(mean_loss(model, chosen, device), chosen, index, manifests[name])
        for name, (chosen, index) in spread_sets(test_shards, max_blocks).items()
    }


def blocks_fingerprint(shard_sha256: str, index: np.ndarray) -> str:
    """sha256 of a shard's checksum and the indices of the blocks taken from it."""
    digest = hashlib.sha256(shard_sha256.encode())
    digest.update(np.asarray(index, dtype=np.int64).tobytes())
    return digest.hexdigest()
