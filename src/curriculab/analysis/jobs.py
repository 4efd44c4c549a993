"""The analysis stage's quick job: the verdict family's registration (rule preregister, a
`run:` block in Snakemake's process, before any training job)."""

from __future__ import annotations

import json
from typing import Any

from curriculab.analysis.registration import register
from curriculab.errors import job_log


def preregister_job(output: Any, params: Any, log: Any) -> None:
    """Register the verdict family `params.spec` (analysis/registration.py) at output[0]; the
    finished cells under `params.runs` are counted in its history. The record goes to the log."""
    with job_log(log[0]) as log_file:
        record = register(params.spec, output[0], params.runs)
        print(json.dumps(record["history"]), file=log_file)
