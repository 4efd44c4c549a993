"""The cost plan against what a finished study recorded: the same cells, tokens and FLOPs."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.helpers import SCHEMA, TINY_CONFIG
from tests.support.workflow import run_study


def _plan(workdir: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "curriculab", "plan", "--schema", str(SCHEMA), "--json", "p.json"],
        capture_output=True,
        text=True,
        cwd=workdir,
    )
    assert done.returncode == 0, done.stderr
    return json.loads((workdir / "p.json").read_text())


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    config = copy.deepcopy(TINY_CONFIG)
    config["grid"]["ratios"] = [0.3]
    config["grid"]["schedules"] = {k: config["grid"]["schedules"][k] for k in ("shuffled", "late")}
    before = tmp_path_factory.mktemp("plan_before")
    (before / "config.yaml").write_text(yaml.safe_dump(config))
    planned = _plan(before)  # no shards yet: one pass over data of unknown size
    assert planned["cells_unknown_tokens"] == planned["cells"] == 4
    workdir, _ = run_study(tmp_path_factory, "cost", config)
    return workdir


def test_the_plans_flops_are_what_the_cells_recorded(study: Path) -> None:
    planned = _plan(study)
    metrics = [json.loads(p.read_text()) for p in study.glob("results/training/**/metrics.json")]
    assert planned["cells"] == len(metrics) == 4 and planned["cells_unknown_tokens"] == 0
    assert planned["tokens"] == sum(m["tokens_seen"] for m in metrics)
    recorded = sum(m["flops_per_token"] * m["tokens_seen"] for m in metrics)
    assert planned["training_flops"] == pytest.approx(recorded, rel=1e-12)
    assert planned["cpu_hours"] is not None  # this machine's rate, measured on its cells


def test_the_report_sets_the_plan_beside_what_was_spent(study: Path) -> None:
    page = (study / "reports/report.html").read_text()
    assert "Planned before the run" in page and "(100% of it)" in page
