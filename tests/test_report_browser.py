"""Open the rendered report in real headless Chromium, offline, and check every chart drew.

This is the only test that proves the inlined JavaScript runs without a network: the string
checks in test_report.py cannot see a bundle that loads but throws. It needs /usr/bin/chromium
(Debian package `chromium`) and fails, rather than skips, without it, so CI cannot pass silently.
"""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.test_report import CHART_IDS, render

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",  # CI containers run as root, where the sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=10000",  # ms of page time: lets vega-embed's promises settle
]


class _ChartContents(HTMLParser):
    """Collects the tag names nested inside each <div id=...> of interest."""

    def __init__(self, ids: tuple[str, ...]) -> None:
        super().__init__()
        self.ids = ids
        self.tags: dict[str, list[str]] = {chart_id: [] for chart_id in ids}
        self.errors: dict[str, list[str]] = {chart_id: [] for chart_id in ids}
        self._open: list[tuple[str, str | None]] = []  # (tag, chart id it belongs to)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        inside = self._open[-1][1] if self._open else None
        if inside is not None:
            self.tags[inside].append(tag)
            if ("class", "chart-error") in attrs:
                self.errors[inside].append(tag)
        own_id = dict(attrs).get("id")
        self._open.append((tag, own_id if own_id in self.ids else inside))

    def handle_endtag(self, tag: str) -> None:
        # Pop back to the matching open tag; tolerates void and unclosed elements.
        for index in range(len(self._open) - 1, -1, -1):
            if self._open[index][0] == tag:
                del self._open[index:]
                return


def _chromium() -> str:
    """Path of the Chromium binary, or a test failure that says how to install it."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail(
            "chromium is not on PATH; the report's offline rendering cannot be checked. "
            "Install it with: apt-get update && apt-get install -y chromium"
        )
    return path


def _run_chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / "chromium-profile"
    command = [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_every_chart_renders_offline_in_chromium(tmp_path: Path) -> None:
    report, _ = render(tmp_path)
    done = _run_chromium(tmp_path, "--dump-dom", report.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    parser = _ChartContents(CHART_IDS)
    parser.feed(done.stdout)
    for chart_id in CHART_IDS:
        assert parser.errors[chart_id] == [], f"{chart_id} shows a rendering error"
        drawn = {"svg", "canvas"} & set(parser.tags[chart_id])
        assert drawn, f"{chart_id} holds no <svg>/<canvas>: {parser.tags[chart_id][:10]}"
