"""What a training job reads: the files of one cell, checked, and its stream as token batches."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from curriculab.data.shards import read_blocks, verify_shard, verify_tokenizer
from curriculab.io import sha256_file
from curriculab.streams.stream_file import read_stream


@dataclass(frozen=True)
class CellInputs:
    """Files one cell reads; every mapping is keyed by domain name."""

    stream: Path
    train_shards: dict[str, Path]
    test_shards: dict[str, Path]
    manifests: dict[str, Path]
    tokenizer: Path


def verify_inputs(inputs: CellInputs) -> None:
    """Every shard matches its manifest's sha256, and the tokenizer is the shards' tokenizer."""
    for name, manifest in sorted(inputs.manifests.items()):
        verify_shard(inputs.train_shards[name], manifest, "train")
        verify_shard(inputs.test_shards[name], manifest, "test")
    verify_tokenizer(
        inputs.tokenizer, [inputs.manifests[name] for name in sorted(inputs.manifests)]
    )


class StreamBatches:
    """Token batches in stream order, gathered from memory-mapped shards (no tokens copied
    until a batch is built; on CUDA the batch is pinned and moved without blocking)."""

    def __init__(self, inputs: CellInputs, batch_size: int, device: torch.device) -> None:
        self.names, self.domains, self.blocks = read_stream(inputs.stream)
        self.stream_sha256 = sha256_file(inputs.stream)  # what it trained on, for the audit
        names = self.names
        self.shards = [read_blocks(inputs.train_shards[name]) for name in names]
        self.batch_size = batch_size
        self.device = device
        self.seq_len = self.shards[0].shape[1]
        self.steps = math.ceil(len(self.blocks) / batch_size)

    def batch(self, step: int) -> torch.Tensor:
        """The (B, T) int64 tokens of optimiser step `step`."""
        span = slice(step * self.batch_size, (step + 1) * self.batch_size)
        domains, blocks = self.domains[span], self.blocks[span]
        out = np.empty((len(blocks), self.seq_len), dtype=np.int64)
        for k, shard in enumerate(self.shards):
            rows = np.flatnonzero(domains == k)
            out[rows] = shard[blocks[rows]]
        tokens = torch.from_numpy(out)
        if self.device.type == "cuda":
            return tokens.pin_memory().to(self.device, non_blocking=True)
        return tokens
