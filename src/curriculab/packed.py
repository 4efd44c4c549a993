"""Training a pack of cells in one process: one after another, or batched in every step.

`serial` runs `train_cell` for each cell in turn: exactly what a job of its own would compute
(the same floats on the CPU), without paying the interpreter, torch, transformers and the
shards' hashes once per cell.

`batched` trains every cell of the pack in each step as one computation: the cells' weights are
stacked along a new leading axis and the Hugging Face model is run over that axis with
`torch.func.vmap` + `functional_call`, so each matmul is one batched matmul over the pack. Each
cell keeps its own model (its parameters are views into its row of the stack, and its row of
the stacked gradient is handed to them), its own stream, initial weights (its seed), AdamW
state, learning rate schedule, gradient clipping, learning curve, checkpoint and outputs. The
summed loss has no term that mixes two cells, so each cell's gradient is its own. On this
CPU the results are bitwise those of the unbatched run (a cell's logits do not depend on the
other rows of a batched matmul, and each loss is reduced per cell); tests/test_packed.py states
the tolerance it allows elsewhere. Small models that leave a GPU mostly idle train several
times faster this way; on one CPU core, about as fast as one after another (bench/README.md).
"""

from __future__ import annotations

import sys
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch
from torch.func import functional_call, vmap

from curriculab.branch import Branching, Candidate, Snapshot, plan_branches
from curriculab.checkpoint import (
    Progress,
    TrainingError,
    load_checkpoint,
    run_fingerprint,
    save_checkpoint,
)
from curriculab.config import TrainConfig
from curriculab.data.shards import read_blocks
from curriculab.evaluate import bits_per_byte, spread_subset
from curriculab.io import read_json, sha256_file, write_json
from curriculab.lr import lr_at
from curriculab.model import build_model
from curriculab.outputs import write_outputs
from curriculab.streams.stream_file import read_stream
from curriculab.train import (
    CellInputs,
    StreamBatches,
    due_after,
    eval_steps,
    log_progress,
    make_optimizer,
    raise_if_bad,
    setup_runtime,
    train_cell,
    verify_inputs,
)
from curriculab.trunk import branch_from_trunk

# The CPU's attention kernel has no batching rule: vmap runs it once per cell, which is what
# keeps each cell's attention exactly its unbatched one. Expected, so not worth a warning.
warnings.filterwarnings("ignore", message="There is a performance drop because we have not yet")


@dataclass(frozen=True)
class CellJob:
    """One cell of a pack: what it trains on, with which settings, and where it writes."""

    cell: str  # a readable label, e.g. "ratio=0.05 schedule=shuffled arm=constant seed=0"
    inputs: CellInputs
    cfg: TrainConfig
    seed: int
    out_dir: Path
    log: Path  # the cell's own log (progress lines)
    window_start: float | None = None
    trunk: Path | None = None  # the trunk checkpoint it starts from (curriculab.trunk)


def _candidate(job: CellJob) -> Candidate:
    """What decides whether the job shares a prefix with another (curriculab.branch)."""
    _, _, blocks = read_stream(job.inputs.stream)
    # By content: a matched control's stream is the baseline's under another name.
    stream = sha256_file(job.inputs.stream) if job.trunk is None else None  # None: shares none
    return Candidate(stream, job.seed, job.cfg, job.window_start, len(blocks))


def train_pack(
    jobs: list[CellJob],
    preset: str,
    pack: dict[str, Any],
    packing: str = "serial",
    threads: int = 1,
    log: TextIO = sys.stderr,
) -> list[dict[str, Any]]:
    """Train the cells of one pack in this process; each cell's metrics, in pack order."""
    shared = {
        (tuple(sorted(j.inputs.manifests.items())), j.inputs.tokenizer): j.inputs for j in jobs
    }
    for inputs in shared.values():  # every shard read (hashed) once per pack, not per cell
        verify_inputs(inputs)
    if packing == "auto":  # batched pays off where one small model leaves the device idle
        packing = (
            "batched" if setup_runtime(threads, jobs[0].cfg.device).type == "cuda" else "serial"
        )
    record = {**pack, "packing": packing}
    for job in jobs:
        job.log.parent.mkdir(parents=True, exist_ok=True)
    if packing == "batched":
        return train_batched(jobs, preset, record, threads, log)
    branches = plan_branches([_candidate(job) for job in jobs])
    keep: dict[int, dict[int, Snapshot | None]] = {}
    users: dict[tuple[int, int], int] = {}  # snapshots are freed after their last user
    for root, step in branches.values():
        keep.setdefault(root, {})[step] = None
        users[root, step] = users.get((root, step), 0) + 1
    results, started = [], time.perf_counter()
    for index, job in enumerate(jobs):
        start = None
        if index in branches:
            root, step = branches[index]
            start = keep[root][step]
            users[root, step] -= 1
            if not users[root, step]:
                keep[root][step] = None
        with job.log.open("w", buffering=1) as cell_log:
            results.append(
                train_cell(
                    job.inputs, preset, job.cfg, job.seed, job.cell, job.out_dir, threads,
                    cell_log, job.window_start, pack=record, verify=False,
                    branching=Branching(start=start, keep=keep.get(index, {})), trunk=job.trunk,
                )
            )  # fmt: skip
        elapsed = time.perf_counter() - started
        print(
            f"pack {pack['name']}: cell {index + 1}/{len(jobs)} done ({job.cell}), "
            f"{results[-1]['tokens_per_second']:,.0f} tokens/s, "
            f"ETA {elapsed / (index + 1) * (len(jobs) - index - 1):.0f}s",
            file=log,
            flush=True,
        )
    return results


# --- batched --------------------------------------------------------------------------------


@dataclass
class _Cell:
    """A cell while its pack trains."""

    job: CellJob
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    data: StreamBatches
    progress: Progress
    fingerprint: str
    log: TextIO
    evaluate_at: set[int] = field(default_factory=set)
    resumed_at: int = 0
    first_bad: torch.Tensor | None = None  # first step with a non-finite loss (-1: none yet)

    @property
    def checkpoint(self) -> Path:
        return self.job.out_dir / "checkpoint.pt"


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
    """Each model's mean next-token loss on the same blocks (as train.mean_loss, batched)."""
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


def _open_cell(job: CellJob, preset: str, manifests: dict[str, Any], device) -> _Cell:
    shapes = next(iter(manifests.values()))  # every shard shares tokenizer and seq_len
    model = build_model(preset, shapes["vocab_size"], shapes["seq_len"], job.seed).to(device)
    optimizer = make_optimizer(model, job.cfg, device)
    log = job.log.open("w", buffering=1)
    fingerprint = run_fingerprint(job.inputs.stream, preset, job.cfg, job.seed, job.window_start)
    progress = load_checkpoint(job.out_dir / "checkpoint.pt", model, optimizer, fingerprint, log)
    data = StreamBatches(job.inputs, job.cfg.batch_size, device)
    if progress.step == 0 and job.trunk is not None:  # (its own checkpoint wins)
        progress = branch_from_trunk(
            model, optimizer, data, job.cfg, job.window_start, job.cell, job.trunk, preset,
            job.seed, manifests, log,
        )  # fmt: skip
    cell = _Cell(job, model, optimizer, data, progress, fingerprint, log)
    cell.evaluate_at = set(eval_steps(data.steps, job.cfg.eval_points, job.cfg.eval_spacing))
    cell.resumed_at = progress.step
    cell.first_bad = torch.full((), -1, device=device)
    return cell


def train_batched(
    jobs: list[CellJob], preset: str, record: dict[str, Any], threads: int, log: TextIO
) -> list[dict[str, Any]]:
    """Train every cell of the pack in each step as one batched computation."""
    cfg0 = jobs[0].cfg
    shapes_of = {(j.cfg.batch_size, j.cfg.micro_batch_size, j.cfg.device) for j in jobs}
    if len(shapes_of) > 1:
        raise TrainingError(f"pack {record['name']}: cells differ in batch shape or device")
    device = setup_runtime(threads, cfg0.device)
    manifests = {name: read_json(path) for name, path in jobs[0].inputs.manifests.items()}
    cells = [_open_cell(job, preset, manifests, device) for job in jobs]
    pack = PackModel([c.model for c in cells])
    tests = {n: read_blocks(p) for n, p in sorted(jobs[0].inputs.test_shards.items())}
    curve_sets = {n: b[spread_subset(len(b), cfg0.eval_blocks)] for n, b in tests.items()}
    accumulation = max(1, cfg0.batch_size // (cfg0.micro_batch_size or cfg0.batch_size))
    started = time.perf_counter()

    def record_curve(group: list[_Cell], step: int) -> None:
        if not group:  # e.g. no cell at step 0: all resumed (own checkpoint or a trunk)
            return
        for name, blocks in curve_sets.items():
            losses = mean_losses(pack, [c.model for c in group], blocks, device)
            bpt = manifests[name]["splits"]["test"]["bytes_per_token"]
            for cell, loss in zip(group, losses, strict=True):
                cell.progress.curve.append(
                    {"step": step, "tokens_seen": cell.progress.tokens_seen, "domain": name,
                     "loss": loss, "bits_per_byte": bits_per_byte(loss, bpt)}
                )  # fmt: skip

    record_curve([c for c in cells if c.progress.step == 0], 0)
    for step in range(min(c.progress.step for c in cells), max(c.data.steps for c in cells)):
        active = [c for c in cells if c.progress.step == step < c.data.steps]
        tick = time.perf_counter()
        by_shape: dict[tuple[int, ...], list[tuple[_Cell, torch.Tensor]]] = defaultdict(list)
        for cell in active:  # the last batch of a stream may be short: one group per shape
            tokens = cell.data.batch(step)
            by_shape[tuple(tokens.shape)].append((cell, tokens))
        losses = {}
        for group in by_shape.values():
            losses.update(_batched_step(pack, group, step, accumulation, device))
        share = (time.perf_counter() - tick) / max(len(active), 1)
        for cell, tokens in (pair for group in by_shape.values() for pair in group):
            _after_step(cell, step, losses[id(cell)], tokens.numel(), share)
        evaluated = [c for c in active if step + 1 in c.evaluate_at]
        if evaluated:
            record_curve(evaluated, step + 1)
    finals: list[dict[str, Any]] = [{} for _ in cells]
    for name, blocks in tests.items():  # the final test, batched over the pack's models
        chosen = blocks[spread_subset(len(blocks), cfg0.final_eval_blocks)]
        bpt = manifests[name]["splits"]["test"]["bytes_per_token"]
        losses = mean_losses(pack, [c.model for c in cells], chosen, device)
        for final, loss in zip(finals, losses, strict=True):
            final[name] = {"loss": loss, "bits_per_byte": bits_per_byte(loss, bpt),
                           "n_blocks": len(chosen), "n_tokens": int(chosen.size)}  # fmt: skip
    pack.release()
    return [
        _finish(cell, final, preset, threads, len(tests), record, started, device)
        for cell, final in zip(cells, finals, strict=True)
    ]


def _batched_step(pack, group, step, accumulation, device) -> dict[int, torch.Tensor]:
    """One optimiser step of every cell in the group; each cell's mean loss (a tensor)."""
    members = [cell for cell, _ in group]
    for cell in members:
        for param_group in cell.optimizer.param_groups:
            param_group["lr"] = lr_at(step, cell.data.steps, cell.job.cfg, cell.job.window_start)
    tokens = torch.stack([t for _, t in group])  # (cells, B, T)
    total = torch.zeros(len(members), device=device)
    for micro in tokens.chunk(accumulation, dim=1):
        params = pack.stack([c.model for c in members], grad=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = pack.losses(params, micro) / accumulation
        loss.sum().backward()  # no term couples two cells: each gradient is its own cell's
        total += loss.detach()
    pack.hand_out_grads([c.model for c in members])
    for cell in members:
        torch.nn.utils.clip_grad_norm_(cell.model.parameters(), cell.job.cfg.grad_clip)
        cell.optimizer.step()
        cell.optimizer.zero_grad(set_to_none=True)
    return {id(cell): total[k] for k, cell in enumerate(members)}


def _after_step(cell: _Cell, step: int, loss: torch.Tensor, tokens: int, seconds: float) -> None:
    """Progress, the non-finite check, progress lines and checkpoints of one cell's step (the
    host waits for the device only where the unbatched loop does)."""
    cfg, progress = cell.job.cfg, cell.progress
    cell.first_bad = torch.where((cell.first_bad < 0) & ~torch.isfinite(loss), step, cell.first_bad)
    progress.step, progress.tokens_seen = step + 1, progress.tokens_seen + tokens
    progress.train_seconds += seconds
    saving, logging = due_after(step, cell.data.steps, cfg)
    if logging or saving or step + 1 in cell.evaluate_at:
        raise_if_bad(cell.first_bad, cell.job.cell)
    if logging:
        log_progress(progress, cell.data.steps, loss.item(), cell.optimizer, cell.log)
    if saving:
        save_checkpoint(cell.checkpoint, cell.model, cell.optimizer, progress, cell.fingerprint)


def _finish(cell: _Cell, final, preset, threads, n_domains, record, started, device):
    """Write one cell's outputs (model, curve, metrics) and drop its checkpoint."""
    metrics = write_outputs(
        cell.model, cell.progress, cell.data, cell.job.cfg, device, preset, cell.job.seed,
        cell.job.cell, threads, cell.job.inputs.tokenizer, cell.job.out_dir, final,
        cell.job.window_start, n_domains,
    )  # fmt: skip
    metrics.update(resumed_at_step=cell.resumed_at, wall_seconds=time.perf_counter() - started)
    metrics["pack"] = record
    metrics["inherited"] = cell.progress.inherited
    write_json(cell.job.out_dir / "metrics.json", metrics)
    cell.checkpoint.unlink(missing_ok=True)
    cell.log.close()
    return metrics
