"""Training a pack of cells in one process, batched in every step.

`batched` trains every cell of the pack in each step as one computation: the cells' weights are
stacked along a new leading axis and the Hugging Face model is run over that axis with
`torch.func.vmap` + `functional_call`, so each matmul is one batched matmul over the pack. Each
cell keeps its own model (its parameters are views into its row of the stack, and its row of
the stacked gradient is handed to them), its own stream, initial weights (its seed), AdamW
state, learning rate schedule, gradient clipping, learning curve, checkpoint and outputs. The
summed loss has no term that mixes two cells, so each cell's gradient is its own. On this
CPU the results are bitwise those of the unbatched run (a cell's logits do not depend on the
other rows of a batched matmul, and each loss is reduced per cell);
tests/training/test_batched.py states the tolerance it allows elsewhere. Small models that leave
a GPU mostly idle train several times faster this way; on one CPU core, about as fast as one
after another (bench/README.md). Each cell opens, books its steps, records its curve and
finishes through `curriculab.training.cell`, as a cell trained alone does.
"""

from __future__ import annotations

import time
import warnings
from collections import defaultdict
from typing import Any, TextIO

import numpy as np
import torch
from torch.func import functional_call, vmap

from curriculab.io import read_json
from curriculab.training.cell import (
    CellJob,
    Run,
    book_step,
    finish,
    log_progress,
    open_run,
    record_curve,
    save,
    set_lr,
)
from curriculab.training.checkpoint import TrainingError
from curriculab.training.devices import setup_runtime
from curriculab.training.heldout import spread_sets, test_record
from curriculab.training.optim import accumulation_steps

# The CPU's attention kernel has no batching rule: vmap runs it once per cell, which is what
# keeps each cell's attention exactly its unbatched one. Expected, so not worth a warning.
warnings.filterwarnings("ignore", message="There is a performance drop because we have not yet")


class PackModel:
    """The Hugging Face model run over a leading pack axis of stacked weights.

    The weights of every cell live in one stacked tensor per parameter name (`weights`); each
    cell's own model parameters are views into its row, so its optimiser updates the stack in
    place and nothing is copied per step. Each backward leaves the stacked gradient in
    `weights[name].grad`, which `hand_out_grads` gives to each cell's parameters as a view.
    """

    def __init__(self, models: list[torch.nn.Module]) -> None:
        self.models = models
        self.base = models[0]  # the structure and buffers; functional_call swaps in the stack
        self.names = [name for name, _ in models[0].named_parameters()]
        own = [dict(m.named_parameters()) for m in models]
        with torch.no_grad():
            self.weights = {
                n: torch.stack([p[n].detach() for p in own]).requires_grad_() for n in self.names
            }
        for k, params in enumerate(own):
            for n, param in params.items():
                param.data = self.weights[n].data[k]  # tied weights are one parameter: once
        self.row = {id(m): k for k, m in enumerate(models)}

        def logits(params: dict[str, torch.Tensor], tokens: torch.Tensor) -> torch.Tensor:
            return functional_call(self.base, params, (tokens,)).logits

        self.logits = vmap(logits)  # (cells, B, T) tokens -> (cells, B, T, V) logits

    def losses(self, params: dict[str, torch.Tensor], tokens: torch.Tensor) -> torch.Tensor:
        """(cells,) mean next-token loss of each cell on its own tokens. The loss is the
        model's own loss function applied to each cell's logits one at a time, so it sums in
        the same order as an unbatched forward (batched, the reduction could round apart)."""
        vocab = self.base.config.vocab_size
        return torch.stack(  # unbind, not indexing: its backward builds no zero-filled copies
            [
                self.base.loss_function(logits=logits, labels=labels, vocab_size=vocab)
                for logits, labels in zip(
                    self.logits(params, tokens).unbind(0), tokens.unbind(0), strict=True
                )
            ]
        )

    def stack(self, models: list[torch.nn.Module], grad: bool) -> dict[str, torch.Tensor]:
        """The stacked weights of `models` (all of them: the stack itself, no copy; a subset,
        e.g. cells whose stream has ended: their rows), differentiable when grad."""
        rows = [self.row[id(m)] for m in models]
        weights = self.weights if grad else {n: w.detach() for n, w in self.weights.items()}
        if rows == list(range(len(self.models))):
            return weights
        index = torch.tensor(rows, dtype=torch.long, device=self.weights[self.names[0]].device)
        return {n: w.index_select(0, index) for n, w in weights.items()}

    def hand_out_grads(self, models: list[torch.nn.Module]) -> None:
        """Give each model its row of the stacked gradients; clear the stack's."""
        for model in models:
            row = self.row[id(model)]
            for n, param in model.named_parameters():
                grad = self.weights[n].grad
                param.grad = None if grad is None else grad[row]
        for weight in self.weights.values():
            weight.grad = None

    def release(self) -> None:
        """Give every model weights of its own again (before saving it)."""
        for model in self.models:
            for param in model.parameters():
                param.data = param.data.clone()


@torch.no_grad()
def mean_losses(
    pack: PackModel, models: list[torch.nn.Module], blocks: np.ndarray, device, batch_size=32
) -> list[float]:
    """Each model's mean next-token loss on the same blocks (as heldout.mean_loss, batched)."""
    for model in models:
        model.eval()
    params = pack.stack(models, grad=False)
    totals = torch.zeros(len(models), dtype=torch.float64)
    for start in range(0, len(blocks), batch_size):
        batch = torch.from_numpy(blocks[start : start + batch_size].astype(np.int64)).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            losses = pack.losses(params, batch.expand(len(models), *batch.shape))
        totals += losses.double().cpu() * len(batch)
    for model in models:
        model.train()
    return (totals / len(blocks)).tolist()


def train_batched(
    jobs: list[CellJob], preset: str, record: dict[str, Any], threads: int, log: TextIO
) -> list[dict[str, Any]]:
    """Train every cell of the pack in each step as one batched computation."""
    cfg0 = jobs[0].cfg
    shared = ("batch_size", "micro_batch_size", "device", "eval_blocks", "final_eval_blocks")
    if len({tuple(getattr(j.cfg, key) for key in shared) for j in jobs}) > 1:
        raise TrainingError(
            f"pack {record['name']}: cells differ in batch shape, device or evaluation blocks"
        )
    device = setup_runtime(threads, cfg0.device)
    manifests = {name: read_json(path) for name, path in jobs[0].inputs.manifests.items()}
    runs = [
        open_run(job, preset, device, manifests, job.log.open("w", buffering=1),
                 job.out_dir / "checkpoint.pt")
        for job in jobs
    ]  # fmt: skip
    pack = PackModel([run.model for run in runs])
    curve_sets = runs[0].eval_sets  # the same blocks for every cell (same eval_blocks)
    accumulation = accumulation_steps(cfg0)
    started = time.perf_counter()

    def curve_point(group: list[Run], step: int) -> None:
        if not group:  # e.g. no cell at step 0: all resumed (own checkpoint or a trunk)
            return
        losses: list[dict[str, float]] = [{} for _ in group]
        for name, blocks in curve_sets.items():
            measured = mean_losses(pack, [run.model for run in group], blocks, device)
            for own, loss in zip(losses, measured, strict=True):
                own[name] = loss
        for run, own in zip(group, losses, strict=True):
            record_curve(run, step, own)

    curve_point([run for run in runs if run.progress.step == 0], 0)
    for step in range(min(r.progress.step for r in runs), max(r.data.steps for r in runs)):
        active = [run for run in runs if run.progress.step == step < run.data.steps]
        tick = time.perf_counter()
        by_shape: dict[tuple[int, ...], list[tuple[Run, torch.Tensor]]] = defaultdict(list)
        for run in active:  # the last batch of a stream may be short: one group per shape
            tokens = run.data.batch(step)
            by_shape[tuple(tokens.shape)].append((run, tokens))
        losses = {}
        for group in by_shape.values():
            losses.update(_batched_step(pack, group, step, accumulation, device))
        share = (time.perf_counter() - tick) / max(len(active), 1)
        due = {}
        for run, tokens in (pair for group in by_shape.values() for pair in group):
            due[id(run)] = book_step(run, step, losses[id(run)], tokens.numel(), run.data.steps)
            run.progress.train_seconds += share
            if due[id(run)].log:
                log_progress(run, losses[id(run)])
        curve_point([run for run in active if due[id(run)].curve], step + 1)
        for run in active:
            if due[id(run)].save:
                save(run)
    finals: list[dict[str, Any]] = [{} for _ in runs]
    for name, (chosen, index) in spread_sets(jobs[0].inputs.test_shards,
                                            cfg0.final_eval_blocks).items():  # fmt: skip
        losses = mean_losses(pack, [run.model for run in runs], chosen, device)
        for final, loss in zip(finals, losses, strict=True):
            final[name] = test_record(loss, chosen, index, manifests[name])
    pack.release()
    results = []
    for run, final in zip(runs, finals, strict=True):
        results.append(finish(run, final, threads, record, started))
        run.log.close()
    return results


def _batched_step(pack, group, step, accumulation, device) -> dict[int, torch.Tensor]:
    """One optimiser step of every run in the group; each run's mean loss (a tensor)."""
    members = [run for run, _ in group]
    for run in members:
        set_lr(run, step)
    tokens = torch.stack([t for _, t in group])  # (cells, B, T)
    total = torch.zeros(len(members), device=device)
    for micro in tokens.chunk(accumulation, dim=1):
        params = pack.stack([run.model for run in members], grad=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = pack.losses(params, micro) / accumulation
        loss.sum().backward()  # no term couples two cells: each gradient is its own cell's
        total += loss.detach()
    pack.hand_out_grads([run.model for run in members])
    for run in members:
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), run.cfg.grad_clip)
        run.optimizer.step()
        run.optimizer.zero_grad(set_to_none=True)
    return {id(run): total[k] for k, run in enumerate(members)}
