"""The `panel` key's tables are found in the working directory, else in the workflow's own
directory (files that ship with it), else the key is named with both places."""

from __future__ import annotations

from pathlib import Path

import pytest

from curriculab.errors import ConfigError
from curriculab.panel.plan import check_panel


def _raw(path: str) -> dict:
    return {"own": False, "tables": {"t": {"file": path, "metric": "loss"}}}


def test_a_table_is_found_in_the_working_directory_then_the_workflows(tmp_path: Path) -> None:
    work, shipped = tmp_path / "work", tmp_path / "workflow"
    for folder in (work / "data", shipped / "data"):
        folder.mkdir(parents=True)
    (shipped / "data" / "runs.csv").write_text("run\n")
    found = check_panel(_raw("data/runs.csv"), work, shipped).tables["t"].file
    assert found == str(shipped.resolve() / "data" / "runs.csv")
    (work / "data" / "runs.csv").write_text("run\n")  # the working directory's comes first
    assert check_panel(_raw("data/runs.csv"), work, shipped).tables["t"].file == "data/runs.csv"


def test_a_table_found_nowhere_names_its_key_and_both_places(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'panel.tables.t': no such file 'x.csv' in the work"
                       r"ing directory or the workflow's directory") as error:  # fmt: skip
        check_panel(_raw("x.csv"), tmp_path, tmp_path / "elsewhere")
    assert "\n" not in str(error.value)
