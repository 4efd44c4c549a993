"""The ladder stage's quick job: a ladder cell's stream (rule ladder_stream, a `run:` block)."""

from __future__ import annotations

from typing import Any

from curriculab.analysis.domains import train_blocks
from curriculab.io import read_json
from curriculab.ladder.plan import Ladder, cell_plan
from curriculab.streams.jobs import stream_job


def ladder_stream_job(input: Any, output: Any, params: Any, wildcards: Any, log: Any) -> None:
    """A ladder cell's stream: its shares and tokens from the manifests (and for the check, the
    ladder's predicted mixtures)."""
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
