"""The design stage's quick job: a design point's stream (rule design_stream, a `run:` block)."""

from __future__ import annotations

from typing import Any

from curriculab.io import read_json
from curriculab.streams.jobs import stream_job


def design_stream_job(input: Any, output: Any, params: Any, wildcards: Any, log: Any) -> None:
    """A design point's stream: the builder of rule stream, the spec read from its round's
    proposals."""
    proposals = read_json(input.proposals)["proposals"]
    spec = next(p["spec"] for p in proposals if p["schedule"] == wildcards.schedule)
    stream_job(input, output, params, wildcards, log, spec)
