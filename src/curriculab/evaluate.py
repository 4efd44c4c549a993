"""Held-out loss of a model on token blocks: nats per token and bits per byte."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from curriculab.data.shards import read_blocks, verify_shard
from curriculab.devices import claim_device
from curriculab.io import read_json, write_json


def spread_subset(n_blocks: int, k: int | None) -> np.ndarray:
    """k block indices spread evenly over a shard (all of them when k is None or >= n)."""
    if k is None or k >= n_blocks:
        return np.arange(n_blocks)
    return np.unique(np.linspace(0, n_blocks - 1, k).round().astype(np.int64))


@torch.no_grad()
def mean_loss(
    model: torch.nn.Module, blocks: np.ndarray, device: torch.device, batch_size: int = 32
) -> float:
    """Mean next-token loss (nats/token) over equal-length blocks, in eval mode."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(blocks), batch_size):
        batch = torch.from_numpy(blocks[start : start + batch_size].astype(np.int64)).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = model(input_ids=batch, labels=batch).loss
        total += float(loss) * len(batch)
        count += len(batch)
    model.train(was_training)
    return total / count


def bits_per_byte(loss: float, bytes_per_token: float) -> float:
    """Convert nats/token to bits/byte, which does not depend on the tokenizer."""
    return loss / math.log(2) / bytes_per_token


def evaluate_run(
    model_dir: str | Path,
    test_shards: dict[str, str | Path],
    manifests: dict[str, str | Path],
    max_blocks: int | None,
    out_path: str | Path,
    device_choice: str = "auto",
) -> dict[str, Any]:
    """Final evaluation of a saved model on every domain's test shard; writes eval.json.
    `device_choice` is the study's train.device (auto, cpu or cuda)."""
    from transformers import AutoModelForCausalLM

    for name, shard in sorted(test_shards.items()):
        verify_shard(shard, manifests[name], "test")
    device = claim_device(device_choice)
    # safetensors only, and never trust_remote_code: loading a model runs no code from disk.
    model = AutoModelForCausalLM.from_pretrained(model_dir, use_safetensors=True).to(device)
    results: dict[str, Any] = {}
    for name in sorted(test_shards):
        blocks = read_blocks(test_shards[name])
        chosen = blocks[spread_subset(len(blocks), max_blocks)]
        loss = mean_loss(model, chosen, device)
        bytes_per_token = read_json(manifests[name])["splits"]["test"]["bytes_per_token"]
        results[name] = {
            "loss": loss,
            "bits_per_byte": bits_per_byte(loss, bytes_per_token),
            "n_blocks": len(chosen),
            "n_tokens": int(chosen.size),
        }
    payload = {"domains": results, "device": device.type}
    write_json(out_path, payload)
    return payload
