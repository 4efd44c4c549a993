"""The harness stage's quick job: a domain's held-out task (rule harness_task, a `run:` block)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from curriculab.errors import job_log
from curriculab.harness.run import write_heldout_task


def harness_task_job(input: Any, output: Any, wildcards: Any, log: Any) -> None:
    """Write a domain's held-out documents and the harness task that reads them."""
    with job_log(log[0]) as log_file:
        n_docs = write_heldout_task(
            wildcards.domain,
            Path(input.docs),
            Path(input.base),
            Path(output.data),
            Path(output.task),
        )
        print(f"{output.task}: {n_docs} test documents of {wildcards.domain}", file=log_file)
