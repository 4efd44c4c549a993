"""Shared by several test files (moved out of them so that no test imports another)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from curriculab.data.sources import synthetic_documents
from tests.support.helpers import REPO, TINY_CONFIG

SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]


def run(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    return subprocess.run(
        [*SNAKEMAKE, "--directory", str(workdir), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def run_study(tmp_path_factory, name: str, config: dict) -> tuple[Path, str]:
    """A study from `config` run to its report in a fresh folder: (folder, Snakemake's output)."""
    workdir = tmp_path_factory.mktemp(name)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    done = run(workdir, "--cores", "2")
    assert done.returncode == 0, done.stderr[-4000:]
    return workdir, done.stdout + done.stderr


def remade_same_bytes(workdir: Path, copy_dir: Path, target: str) -> None:
    """A finished study plans nothing when run again; in a copy, `target` deleted and made
    alone from the same inputs comes back byte for byte."""
    assert jobs_planned(workdir) == {}  # run again: nothing to do, nothing trained
    shutil.copytree(workdir, copy_dir, symlinks=True)
    (copy_dir / target).unlink()
    done = run(copy_dir, "--cores", "1", target)
    assert done.returncode == 0, done.stderr[-4000:]
    assert (copy_dir / target).read_bytes() == (workdir / target).read_bytes()


def jobs_planned(workdir: Path) -> dict[str, int]:
    """Job counts per rule from a dry run ({} when nothing is to be done); the training jobs
    (one rule per pack, `train_<pack>`) are counted together as "train", and "cells" is the
    number of cells they would train (their metrics.json outputs)."""
    done = run(workdir, "--cores", "2", "--dry-run")
    assert done.returncode == 0, done.stderr
    stats = done.stdout[done.stdout.find("Job stats:") :]  # the first table (a dry run has two)
    stats = stats[: stats.find("\ntotal") + 1]
    planned: dict[str, int] = {}
    for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, re.M):
        if m[1] != "total":
            rule = "train" if m[1].startswith("train_p") else m[1]
            planned[rule] = planned.get(rule, 0) + int(m[2])
    cells = set(re.findall(r"results/training/([^,\s]+)/metrics\.json", train_outputs(done.stdout)))
    return planned | ({"cells": len(cells)} if cells else {})


def train_outputs(printout: str) -> str:
    """The output lines of the training jobs in a dry run's printout."""
    blocks = re.split(r"\n(?=\[.*\]\n(?:local)?rule )", printout)
    return "\n".join(
        line
        for block in blocks
        if re.search(r"^(?:local)?rule train_p", block, re.M)
        for line in block.splitlines()
        if line.strip().startswith("output:")
    )


def jobs_run(printout: str) -> dict[str, int]:
    """Job counts per rule of a real run, from the table Snakemake prints before it starts
    (training packs counted together as "train")."""
    stats = printout[printout.find("Job stats:") :]
    stats = stats[: stats.find("\ntotal") + 1]
    jobs: dict[str, int] = {}
    for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, re.M):
        rule = "train" if m[1].startswith("train_p") else m[1]
        jobs[rule] = jobs.get(rule, 0) + int(m[2])
    return jobs


def snakemake(
    workdir: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SNAKEMAKE, "--directory", str(workdir), "--cores", "2", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONHASHSEED": "0", **(env or {})},
    )


def curriculab_lines(done: subprocess.CompletedProcess) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.startswith("curriculab: ")]


def one_line_problems(done: subprocess.CompletedProcess, expected: str) -> list[str]:
    """What is wrong with a run that should fail with one line containing `expected`."""
    lines = curriculab_lines(done)
    problems = ["exit status 0"] if done.returncode == 0 else []
    if len(lines) != 1 or expected not in lines[0]:
        problems.append(f"expected one line containing {expected!r}, got {lines}")
    return problems


def cooking_docs() -> list[str]:
    return list(synthetic_documents(TINY_CONFIG["domains"]["cooking"]["source"]))
