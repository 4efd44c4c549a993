"""Errors a user can fix, and how a job reports them: one line, no traceback, non-zero exit.

Every error raised because of the study's config or data derives from `CurriculabError`; its
message names the key, file or value at fault and what is expected. Each of
`workflow/scripts/*.py` starts with `log_to(snakemake.log[0])`, so a job that fails on one ends
its log with the line `curriculab: <message>` (Snakemake prints the log, `show-failed-logs`) and
exits with status 1. Any other exception (a bug) keeps its traceback. Quick jobs that run
inside Snakemake's process (`run:` blocks: streams, evaluation) write their log through
`job_log`, which ends it with the same line.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import TextIO


class CurriculabError(Exception):
    """A problem in the study's config or data; the message is one line that names it."""


class ConfigError(CurriculabError, ValueError):
    """A config key or value is wrong; the message is one line naming the key."""


def first_line(error: BaseException) -> str:
    """'Type: first line of its message', for quoting a library's error inside our own line."""
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"


def one_line(error: BaseException) -> str:
    """The error's message on one line, as a job prints it: 'curriculab: ...'."""
    return "curriculab: " + " ".join(str(error).split())


def _excepthook(
    kind: type[BaseException], error: BaseException, traceback: TracebackType | None
) -> None:
    if isinstance(error, CurriculabError):
        print(one_line(error), file=sys.stderr)
    else:
        sys.__excepthook__(kind, error, traceback)


def log_to(log_path: str) -> None:
    """Send this job's stderr (progress, warnings) to its rule's log, line-buffered, and end
    the job with one line there if a CurriculabError escapes."""
    sys.stderr = open(log_path, "w", buffering=1)  # noqa: SIM115 (open for the life of the job)
    sys.excepthook = _excepthook


@contextmanager
def job_log(log_path: str) -> Iterator[TextIO]:
    """The log of a quick job that runs inside Snakemake's own process (a `run:` block, no
    interpreter to start): yields the open log; a CurriculabError ends it with the line
    `curriculab: <message>` and is raised on to Snakemake, which stops the job."""
    with open(log_path, "w", buffering=1) as log:
        try:
            yield log
        except CurriculabError as error:
            print(one_line(error), file=log)
            raise
