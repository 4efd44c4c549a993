"""The cost plan (curriculab.cost): what a study will train, before it runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from curriculab.config import load_study, load_yaml
from curriculab.cost import PEAK_BF16, plan, render
from curriculab.grid import Grid
from curriculab.training.model import PRESETS, parameter_count
from tests.support.helpers import REPO, SCHEMA


def _cells(study) -> list[dict]:
    grid = Grid.of(study)
    return [grid.cell_by_id[k] for k in sorted(grid.cell_by_id)]


def test_the_proxy_study_plans_6nd_flops_on_every_cell() -> None:
    """studies/proxy.yaml, not run in CI: every cell's 1B tokens and about 6 N D FLOPs
    (Kaplan et al.; the attention term and the embedding make up the difference)."""
    study = load_study(load_yaml(REPO / "studies/proxy.yaml"), SCHEMA)
    result = plan(study, _cells(study))
    assert result["cells"] == 30 and result["cells_unknown_tokens"] == 0
    blocks = 1_000_000_000 // 1024
    assert {row["tokens"] for row in result["per_cell"]} == {blocks * 1024}
    n = parameter_count("124m", 50257)
    six_nd = 6 * n * result["tokens"]
    assert 1.0 <= result["training_flops"] / six_nd < 1.3
    hours = result["training_flops"] + result["evaluation_flops"]
    assert result["gpu_hours"]["H100"] == pytest.approx(hours / (PEAK_BF16["H100"] * 0.4) / 3600)
    text = render(result)
    assert "30 cells" in text and "H100" in text


def test_a_fixed_data_study_before_its_shards_says_its_tokens_are_unknown(tiny_config) -> None:
    study = load_study(tiny_config, SCHEMA)
    result = plan(study, _cells(study), manifests=None)
    assert result["cells_unknown_tokens"] == result["cells"] and result["tokens"] == 0
    assert "known once the shards exist" in render(result)


def test_presets_reach_the_proxy_scales() -> None:
    sizes = {name: parameter_count(name, 50257) for name in PRESETS}
    assert 3.0e8 < sizes["350m"] < 4.0e8 and 0.9e9 < sizes["1b"] < 1.2e9


def test_the_command_names_a_bad_config_in_one_line(tmp_path: Path) -> None:
    config = load_yaml(REPO / "config.yaml")
    config["grid"]["seeds"] = "many"
    path = tmp_path / "bad.yaml"
    import yaml

    path.write_text(yaml.safe_dump(config))
    done = subprocess.run(
        [sys.executable, "-m", "curriculab", "plan", "--configfile", str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "curriculab: config key 'grid.seeds': 'many' is not of type 'array'"
    ]
