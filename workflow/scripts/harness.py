"""Rule harness: lm-evaluation-harness tasks on one cell's saved model -> harness.json."""

from pathlib import Path

from curriculab.errors import log_to

log_to(snakemake.log[0])

import torch

from curriculab.harness.run import run_harness
from curriculab.training.devices import claim_device

params = snakemake.params
torch.set_num_threads(snakemake.threads)
device = claim_device(params.device)  # as training does: auto = CUDA when present, a free GPU
run_harness(
    Path(snakemake.input.model),
    params.tasks,
    Path(params.task_dir),
    Path(snakemake.output.scores),
    device=str(device),
    batch_size=params.batch_size,
    limit=params.limit,
)
