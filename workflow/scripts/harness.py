"""Rule harness: lm-evaluation-harness tasks on one cell's saved model -> harness.json."""

from pathlib import Path

from curriculab.errors import log_to

log_to(snakemake.log[0])

import torch

from curriculab.harness import run_harness

params = snakemake.params
use_cuda = params.device != "cpu" and torch.cuda.is_available()
torch.set_num_threads(snakemake.threads)
run_harness(
    Path(snakemake.input.model),
    params.tasks,
    Path(params.task_dir),
    Path(snakemake.output.scores),
    device="cuda" if use_cuda else "cpu",
    batch_size=params.batch_size,
    limit=params.limit,
)
