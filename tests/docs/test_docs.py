"""The docs are plain Markdown; these tests are their build: links resolve, anchors exist,
every page is reachable from README.md, README stays a landing page, and the config reference
is the schema's."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~)")


def pages(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def prose(path: Path) -> str:
    """The page without its fenced code blocks (a link inside code is not a link)."""
    kept, inside = [], False
    for line in path.read_text().splitlines():
        if FENCE.match(line.strip()):
            inside = not inside
        elif not inside:
            kept.append(line)
    return "\n".join(kept)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped (but - and _), spaces to -."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in prose(path).splitlines():
        match = re.match(r"^#{1,6} (.+)$", line)
        if match:
            base = slug(match.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(path: Path) -> list[str]:
    return LINK.findall(prose(path))


def broken(path: Path, root: Path = ROOT) -> list[str]:
    """Every relative link of `path` to a missing file or a missing #anchor."""
    problems = []
    for target in links(path):
        if re.match(r"^[a-z]+:", target):  # http:, https:, mailto: are not checked offline
            continue
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        if not dest.exists():
            problems.append(f"{path.relative_to(root)}: {target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            problems.append(f"{path.relative_to(root)}: {target} (no such heading)")
    return problems


def reachable(root: Path = ROOT) -> set[Path]:
    """Pages reached from README.md by following relative links between Markdown pages."""
    seen, todo = set(), [root / "README.md"]
    while todo:
        page = todo.pop()
        if page in seen or not page.is_file():
            continue
        seen.add(page)
        for target in links(page):
            file = target.partition("#")[0]
            if file.endswith(".md") and not re.match(r"^[a-z]+:", file):
                todo.append((page.parent / file).resolve())
    return seen


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_links_and_anchors_resolve(page: Path) -> None:
    assert not broken(page)


def test_every_docs_page_is_reachable_from_readme() -> None:
    lost = [str(p.relative_to(ROOT)) for p in pages() if p.resolve() not in reachable()]
    assert not lost, f"not linked from README.md or a page it links: {lost}"


def test_readme_is_a_landing_page() -> None:
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250


def test_the_config_reference_is_the_schemas() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "config_reference.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_checks_catch_what_they_promise(tmp_path: Path) -> None:
    """A broken file link, a broken anchor and an orphan page are each found."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text(
        "# Top\n\n[a](docs/a.md#real-heading) [b](docs/b.md) [c](docs/a.md#nope)\n"
        "```\n[code](not/a/link.md)\n```\n"
    )
    (tmp_path / "docs" / "a.md").write_text("# Real heading\n\n[up](../README.md#top)\n")
    (tmp_path / "docs" / "orphan.md").write_text("# Orphan\n")
    found = broken(tmp_path / "README.md", tmp_path)
    assert found == [
        "README.md: docs/b.md (no such file)",
        "README.md: docs/a.md#nope (no such heading)",
    ]
    assert not broken(tmp_path / "docs" / "a.md", tmp_path)
    assert tmp_path / "docs" / "orphan.md" not in reachable(tmp_path)
    assert (tmp_path / "docs" / "a.md").resolve() in reachable(tmp_path)


def test_slugs_follow_github() -> None:
    assert slug("Speed: packs, shared prefixes, and where a cell's time goes") == (
        "speed-packs-shared-prefixes-and-where-a-cells-time-goes"
    )
    assert slug("`family: end_window`") == "family-end_window"
