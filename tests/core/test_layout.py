"""The tests mirror the package: a folder per part of src/curriculab, shared builders in
tests/support and fixtures, and no test file importing another."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
PACKAGE = TESTS.parent / "src" / "curriculab"


def test_no_test_file_sits_at_the_top_level() -> None:
    assert sorted(p.name for p in TESTS.glob("test_*.py")) == []


def test_every_test_folder_names_a_part_of_the_package_or_the_workflow() -> None:
    parts = {p.name for p in PACKAGE.iterdir() if p.is_dir() and not p.name.startswith("_")}
    parts |= {p.stem for p in PACKAGE.glob("*.py")}
    extra = {"core", "workflow", "docs", "support"}  # shared modules, Snakemake, the docs
    folders = {p.name for p in TESTS.iterdir() if p.is_dir() and not p.name.startswith("_")}
    assert folders - parts - extra == set()


def test_no_test_file_imports_another() -> None:
    offenders = []
    for path in TESTS.rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            module = node.module if isinstance(node, ast.ImportFrom) else None
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [module]
            for name in names:
                if name and name.startswith("tests.") and name.split(".")[-1].startswith("test_"):
                    offenders.append(f"{path.relative_to(TESTS)}: {name}")
    assert offenders == []
