# The bodies of the quick jobs. They run inside Snakemake's process (`run:` blocks and
# `force-use-threads` in the profiles): no interpreter, numpy or pyarrow is started for them.

import json
from pathlib import Path

from curriculab.analysis.domains import train_blocks
from curriculab.analysis.registration import register
from curriculab.config import budget_spec
from curriculab.errors import job_log
from curriculab.evaluate import evaluate_cell
from curriculab.harness.run import write_heldout_task
from curriculab.io import read_json
from curriculab.ladder.plan import Ladder, cell_plan
from curriculab.streams.stream_file import (
    write_matched_stream,
    write_stream,
    write_trunk_stream,
)


def stream_job(input, output, params, wildcards, log, spec=None, budget=None):
    """Build the stream and its summary; the summary also goes to the log. `spec`, `budget`:
    the schedule's spec and `streams:` when they are not params' (a design point's spec is
    read from its round's file; a ladder cell has its own of both)."""
    with job_log(log[0]) as log_file:
        summary = write_stream(
            {d: read_json(m) for d, m in zip(params.domains, input.manifests)},
            params.target,
            params.ratio,
            wildcards.schedule,
            spec or params.spec,
            int(wildcards.seed),
            budget_spec(
                budget or params.budget,
                params.seq_len,
                (budget or params.budget).get("step_blocks", 1),
            ),
            output.stream,
            output.summary,
        )
        print(json.dumps(summary), file=log_file)


def preregister_job(output, params, log):
    """Register the verdict family (analysis/registration.py); the record goes to the log."""
    with job_log(log[0]) as log_file:
        record = register(params.spec, output[0], "results/runs")
        print(json.dumps(record["history"]), file=log_file)


def matched_stream_job(input, output, wildcards, log):
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


def trunk_stream_job(input, output, params, wildcards, log):
    """Build a trunk's stream and its summary; the summary also goes to the log."""
    with job_log(log[0]) as log_file:
        summary = write_trunk_stream(
            {d: read_json(m) for d, m in zip(params.domains, input.manifests)},
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


def evaluate_job(input, output, params, log):
    """Write the cell's eval.json; the result also goes to the log."""
    with job_log(log[0]) as log_file:
        result = evaluate_cell(
            input.metrics,
            input.stream,
            dict(zip(params.domains, input.train_shards)),
            dict(zip(params.domains, input.tests)),
            dict(zip(params.domains, input.manifests)),
            params.eval_blocks,
            params.final_eval_blocks,
            output.evaluation,
        )
        print(json.dumps(result, indent=2), file=log_file)


def harness_task_job(input, output, wildcards, log):
    """Write a domain's held-out documents and the harness task that reads them."""
    with job_log(log[0]) as log_file:
        n_docs = write_heldout_task(
            wildcards.domain,
            Path(input.docs),
            Path(input.base),
            Path(output.data),
            Path(output.task),
        )
        print(
            f"{output.task}: {n_docs} test documents of {wildcards.domain}",
            file=log_file,
        )


def design_stream_job(input, output, params, wildcards, log):
    """A design point's stream: its spec is read from its round's proposals."""
    proposals = read_json(input.proposals)["proposals"]
    spec = next(p["spec"] for p in proposals if p["schedule"] == wildcards.schedule)
    stream_job(input, output, params, wildcards, log, spec)


def ladder_stream_job(input, output, params, wildcards, log):
    """A ladder cell's stream: its shares and tokens from the manifests (and for the check,
    the ladder's predicted mixtures)."""
    ladder = Ladder.of(params.ladder)
    predicted = read_json(input.fits[0])["check"] if len(input.fits) else None
    spec, tokens = cell_plan(
        ladder,
        wildcards.schedule,
        train_blocks(params.domains, input.manifests),
        params.target,
        params.ratio,
        predicted,
    )
    budget = {"budget": "fixed_tokens", "tokens": tokens, "max_epochs": None}
    stream_job(input, output, params, wildcards, log, spec, budget)
