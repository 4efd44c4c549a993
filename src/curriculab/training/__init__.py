"""What happens inside a training job, in one package.

- `loop`: one cell, top to bottom (`train_cell`), its optimiser steps (`train_steps`), and a
  pack of cells one after another (`train_pack`);
- `cell`: the life of a run, shared by every way of training it: open (fresh, from its
  checkpoint, a trunk or a shared prefix), book each step, record the curve, finish;
- `batched`: a pack's cells in every step as one batched computation (torch.func.vmap);
- `inputs`: the files a cell reads and its stream as token batches;
- `model` (presets), `lr` (learning-rate schedules, torch-free), `optim` (AdamW, one step),
  `devices` (which device, the runtime settings);
- `heldout`: the learning curve's and the final test's losses; `outputs`: what a cell writes;
- `checkpoint`: resumable checkpoints; `branch`: shared prefixes and trunk planning
  (torch-free); `trunk`: training a trunk segment; `packs`: which cells share a job
  (torch-free, used by the rules);
- `distributed`: one cell on several processes (data parallel: each rank's micro-batches,
  gradients summed, rank 0 writes) and its launcher; `torchrun`: what each rank runs.
Components never call back into the loop: loop -> batched, cell -> inputs, heldout, optim,
outputs, checkpoint, branch, model, lr.
"""
