"""The streams stage's quick jobs: the bodies of rules stream, matched_stream and trunk_stream.

They run inside Snakemake's own process (`run:` blocks; `force-use-threads` in the profiles), so
no interpreter, numpy or pyarrow is started for them (bench/README.md: fixed cost). Each takes
the rule's `input`, `output`, `params`, `wildcards` and `log` as Snakemake passes them, and
writes the stream, its summary, and the summary to the log.
"""

from __future__ import annotations

import json
from typing import Any

from curriculab.errors import job_log
from curriculab.io import read_json
from curriculab.streams.schedules import budget_spec
from curriculab.streams.stream_file import (
    write_matched_stream,
    write_stream,
    write_trunk_stream,
)


def stream_job(
    input: Any,
    output: Any,
    params: Any,
    wildcards: Any,
    log: Any,
    spec: dict[str, Any] | None = None,
    budget: dict[str, Any] | None = None,
) -> None:
    """Build the stream and its summary. `spec`, `budget`: the schedule's spec and `streams:`
    when they are not params' (a design point's spec is read from its round's file; a ladder
    cell has its own of both)."""
    budget = budget or params.budget
    with job_log(log[0]) as log_file:
        summary = write_stream(
            {d: read_json(m) for d, m in zip(params.domains, input.manifests, strict=True)},
            params.target,
            params.ratio,
            wildcards.schedule,
            spec or params.spec,
            int(wildcards.seed),
            budget_spec(budget, params.seq_len, budget.get("step_blocks", 1)),
            output.stream,
            output.summary,
        )
        print(json.dumps(summary), file=log_file)


def matched_stream_job(input: Any, output: Any, wildcards: Any, log: Any) -> None:
    """Link the baseline's stream as a matched control's, with its own summary."""
    with job_log(log[0]) as log_file:
        summary = write_matched_stream(
            input.stream,
            read_json(input.summary),
            read_json(input.lr),
            wildcards.schedule,
            output.stream,
            output.summary,
        )
        print(json.dumps(summary), file=log_file)


def trunk_stream_job(input: Any, output: Any, params: Any, wildcards: Any, log: Any) -> None:
    """Build a trunk's stream (its base mixture over the whole budget) and its summary."""
    with job_log(log[0]) as log_file:
        summary = write_trunk_stream(
            {d: read_json(m) for d, m in zip(params.domains, input.manifests, strict=True)},
            params.target,
            params.ratio,
            wildcards.trunk,
            params.base_d1_share,
            int(wildcards.seed),
            budget_spec(params.budget, params.seq_len, params.batch_size),
            output.stream,
            output.summary,
        )
        print(json.dumps(summary), file=log_file)
