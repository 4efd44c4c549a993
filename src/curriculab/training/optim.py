"""The optimiser and one optimiser step: AdamW, gradient accumulation, clipping, bf16 on CUDA."""

from __future__ import annotations

import torch

from curriculab.config import TrainConfig
from curriculab.training.distributed import rank_world, reduce_gradients


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device):
    """AdamW; no weight decay on norms and biases (1-D tensors); fused kernels on CUDA, and
    the multi-tensor (foreach) update on the CPU, ~10% faster for small models than one
    tensor at a time (bench/README.md)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    fused = device.type == "cuda"
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95), fused=fused, foreach=not fused)


def wants_compile(cfg: TrainConfig, device: torch.device) -> bool:
    """torch.compile pays off on CUDA; on CPU its compile time exceeds a short run's gain."""
    return cfg.compile == "on" or (cfg.compile == "auto" and device.type == "cuda")


def accumulation_steps(cfg: TrainConfig) -> int:
    """Micro-batches per optimiser step."""
    return max(1, cfg.batch_size // (cfg.micro_batch_size or cfg.batch_size))


def train_step(
    model, optimizer, tokens: torch.Tensor, accumulation: int, cfg, device
) -> torch.Tensor:
    """One optimiser step over `accumulation` micro-batches; returns the mean loss (a tensor,
    not synchronised, so the GPU is never made to wait for the host)."""
    total = torch.zeros((), device=device)
    micro_batches = tokens.chunk(accumulation)
    rank, world = rank_world()  # data parallel: this rank's share of the same global batch
    for micro in micro_batches[rank::world]:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = model(input_ids=micro, labels=micro).loss / len(micro_batches)
        loss.backward()
        total += loss.detach()
    reduce_gradients(model, total, world)  # the sum over every rank's micro-batches
    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return total
