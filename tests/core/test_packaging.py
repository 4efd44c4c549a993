"""The ways to install curriculab agree: pyproject.toml, the conda env file, README and CI."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_conda_env_pins_match_pyproject():
    """envs/curriculab.yaml installs exactly pyproject's dependencies, plus the checkout."""
    env = yaml.safe_load((ROOT / "envs" / "curriculab.yaml").read_text())
    pip = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict))
    python = next(item for item in env["dependencies"] if str(item).startswith("python="))
    wanted = _pyproject()["project"]["dependencies"]
    assert sorted(spec for spec in pip if spec != "-e ..") == sorted(wanted)
    assert "-e .." in pip
    floor = re.fullmatch(r">=(\d+\.\d+)", _pyproject()["project"]["requires-python"]).group(1)
    assert tuple(map(int, python.split("=")[1].split("."))) >= tuple(map(int, floor.split(".")))


def test_readme_test_command_is_what_ci_runs():
    """.ci/run calls the test command README's quick start gives, and nothing else tests."""
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)```", quick, flags=re.S)
    lines = [line.strip() for block in commands for line in block.splitlines() if line.strip()]
    assert lines == ["make study", "make test"]
    ci = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert "make test" in ci
    assert not any("pytest" in line for line in ci)
