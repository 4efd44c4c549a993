"""The package's import graph: no circles, and the layering the docs promise.

Read statically from the source (every `import`, also those inside functions and under
TYPE_CHECKING, which hide a circle rather than remove it), and, for "never imports torch",
also by importing the modules in a fresh interpreter.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"


def module_files(src: Path = SRC) -> dict[str, Path]:
    """{dotted module name: file} of every module under src/ (a package by its __init__)."""
    modules = {}
    for path in sorted(src.rglob("*.py")):
        parts = path.relative_to(src).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def imports_of(path: Path) -> set[str]:
    """Every absolute module name an import statement in `path` names (for `from a import b`,
    both `a` and `a.b`: b may be a submodule)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """{module: the package modules it imports}."""
    return {name: (imports_of(path) & modules.keys()) - {name} for name, path in modules.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every set of two or more modules that import each other, directly or around a loop
    (the strongly connected components of the graph, Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_circle_finder_finds_known_circles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e2"}, "e2": {"e"}}
    assert sorted(circles(graph)) == [["a", "b", "c"], ["e", "e2"]]
    assert circles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def test_a_hidden_import_still_counts(tmp_path: Path) -> None:
    """An import inside a function or under TYPE_CHECKING closes a circle too."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "one.py").write_text("from pkg.two import f\n")
    (pkg / "two.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import one\n"
        "def f():\n    import pkg.one\n"
    )
    assert circles(import_graph(module_files(tmp_path))) == [["pkg.one", "pkg.two"]]


def test_no_import_circles_in_the_package() -> None:
    found = circles(import_graph(module_files()))
    assert not found, f"import circles: {found}"


# Which parts of the package each part may import (besides its own modules and the shared
# base: config, errors, io, provenance, objective). Data knows nothing downstream; streams
# know nothing of training; analysis and report read tables, never models.
BASE = {"curriculab", "curriculab.errors", "curriculab.io", "curriculab.provenance"}
MAY_IMPORT = {
    "curriculab.data": BASE,
    "curriculab.streams": BASE | {"curriculab.data", "curriculab.objective"},
}


@pytest.mark.parametrize("part", sorted(MAY_IMPORT))
def test_layers_import_only_what_is_upstream(part: str) -> None:
    modules = module_files()
    allowed = MAY_IMPORT[part] | {part}
    wrong = {
        f"{name} -> {target}"
        for name, targets in import_graph(modules).items()
        if name == part or name.startswith(part + ".")
        for target in targets
        if not any(target == a or target.startswith(a + ".") for a in allowed - {"curriculab"})
        and target != "curriculab"
    }
    assert not wrong, f"{part} imports downstream: {sorted(wrong)}"


def test_the_package_never_imports_the_workflow_scripts() -> None:
    for name, path in module_files().items():
        assert not any(target.startswith(("workflow", "scripts")) for target in imports_of(path)), (
            name
        )


def test_analysis_and_report_never_import_torch() -> None:
    """Imported for real, in a fresh interpreter: nothing they pull in, however indirectly,
    imports torch (the report job runs on machines without a GPU stack)."""
    modules = [
        name
        for name in module_files()
        if name.startswith(("curriculab.analysis", "curriculab.report"))
    ]
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'transformers'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=SRC.parent
    )
    assert json.loads(done.stdout) == []
