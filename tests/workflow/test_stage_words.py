"""One word per stage (docs/pipeline.md): every job of every example study writes under its
own stage's results folder, read from Snakemake's own dry run, so a rule that writes into
another stage's folder fails here whatever its path template looks like."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.helpers import REPO
from tests.support.workflow import run

# The results folders each stage writes (a rule file is a stage: rules/<stage>.smk). A cell's
# directory under results/training/ holds every file about that cell: evaluate and harness add
# theirs to it. An optional stage's cells' streams are built by its own rule into the one
# folder of streams that training reads.
WRITES = {
    "data": ("raw", "data", "tokenizer", "shards"),
    "streams": ("streams",),
    "training": ("training",),
    "evaluate": ("training",),
    "harness": ("harness", "training"),
    "analysis": ("analysis",),
    "design": ("design", "streams"),
    "ladder": ("ladder", "streams"),
    "selection": ("selection",),
    "panel": ("panel",),
    "report": (),
}
CELL_FILES = {"evaluate": {"eval.json"}, "harness": {"harness.json"}}
STUDIES = sorted(["config.yaml", *(f"studies/{p.name}" for p in (REPO / "studies").glob("*.yaml"))])


def rule_files() -> dict[str, str]:
    """{rule name: its stage}: the rule files' `rule NAME:` lines; the training packs' rules are
    named at DAG time, `train_<pack>`."""
    stages = {}
    for path in sorted((REPO / "rules").glob("*.smk")):
        for name in re.findall(r"^\s*rule (\w+):", path.read_text(), re.M):
            stages[name] = path.stem
    return stages


def outputs(dry_run: str) -> list[tuple[str, str]]:
    """(rule, output path) of every job in a dry run's listing."""
    found, rule = [], None
    for line in dry_run.splitlines():
        if m := re.match(r"^(?:local)?rule (\w+):", line):
            rule = m.group(1)
        elif rule and (m := re.match(r"^\s+output: (.+)$", line)):
            found.extend((rule, path.strip()) for path in m.group(1).split(","))
    return found


def test_every_rule_file_is_a_stage_with_its_words() -> None:
    """rules/<stage>.smk -> src/curriculab/<stage>/ (or .py) -> docs/stages/<stage>.md."""
    package = REPO / "src" / "curriculab"
    for path in sorted((REPO / "rules").glob("*.smk")):
        stage = path.stem
        if stage == "common":
            continue
        assert stage in WRITES, f"{path.name}: not a stage of docs/pipeline.md"
        assert (package / stage).is_dir() or (package / f"{stage}.py").is_file(), stage
        assert (REPO / "docs" / "stages" / f"{stage}.md").is_file(), stage


@pytest.mark.parametrize("study", STUDIES)
def test_every_job_writes_under_its_own_stage(tmp_path: Path, study: str) -> None:
    done = run(tmp_path, "--dry-run", "--configfile", str(REPO / study))
    assert done.returncode == 0, done.stderr[-2000:]
    stages = rule_files()
    jobs = outputs(done.stdout)
    assert jobs, done.stdout[-2000:]
    wrong = []
    for rule, path in jobs:
        stage = "training" if rule.startswith("train_") else stages.get(rule, "?")
        if rule == "all":
            continue
        parts = Path(path).parts
        if stage == "report":
            ok = parts[0] == "reports"
        else:
            ok = parts[0] == "results" and parts[1] in WRITES.get(stage, ())
        if stage in CELL_FILES and parts[1] == "training":
            ok = ok and parts[-1] in CELL_FILES[stage]
        if not ok:
            wrong.append(f"{rule} ({stage}): {path}")
    assert not wrong, wrong[:10]
