"""Open the rendered report in real headless Chromium, offline, and check every chart drew.

This is the only test that proves the inlined JavaScript runs without a network: the string
checks in test_report.py cannot see a bundle that loads but throws. It needs /usr/bin/chromium
(Debian package `chromium`) and fails, rather than skips, without it, so CI cannot pass silently.
"""

from __future__ import annotations

import os
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


# Injected into a copy of the report: collects console errors and uncaught exceptions from the
# first script on, and after the charts have had time to render, writes them and every
# resource the page fetched (Resource Timing API) into the DOM for --dump-dom to show.
_OBSERVE_HEAD = """<script>
window.__errors = [];
window.addEventListener("error", (e) => window.__errors.push(String(e.message)));
const __consoleError = console.error;
console.error = (...args) => { window.__errors.push(args.join(" ")); __consoleError(...args); };
</script>"""
_OBSERVE_TAIL = """<script>
setTimeout(() => {
  const seen = {errors: window.__errors,
                resources: performance.getEntriesByType("resource").map((e) => e.name)};
  const out = document.createElement("pre");
  out.id = "observed";
  out.textContent = JSON.stringify(seen);
  document.body.appendChild(out);
}, 3000);
</script>"""


def _observe(tmp_path: Path, page: str) -> dict:
    """Open `page` (HTML text) in Chromium with the observers; return what they saw."""
    import json
    import re

    watched = tmp_path / "observed.html"
    # The first <head> opens the page; the last </body> closes it (the inlined Vega bundle
    # contains both strings too).
    page = page.replace("<head>", "<head>" + _OBSERVE_HEAD, 1)
    body, _, end = page.rpartition("</body>")
    watched.write_text(body + _OBSERVE_TAIL + "</body>" + end, encoding="utf-8")
    done = _run_chromium(tmp_path, "--dump-dom", watched.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<pre id="observed">(.*?)</pre>', done.stdout, re.S)
    assert found, "the observer never reported: the page did not finish loading"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


def test_report_makes_no_network_request_and_logs_no_error(tmp_path: Path) -> None:
    report, _ = render(tmp_path)
    seen = _observe(tmp_path, report.read_text(encoding="utf-8"))
    assert seen["errors"] == []
    assert [url for url in seen["resources"] if not url.startswith(("file:", "data:"))] == []
    # Save what a person would see, as a test artifact.
    default = Path(__file__).resolve().parents[1] / "reports" / "test-artifacts"
    artifacts = Path(os.environ.get("CURRICULAB_ARTIFACTS", default))
    artifacts.mkdir(parents=True, exist_ok=True)
    shot = artifacts / "report.png"
    done = _run_chromium(
        tmp_path, f"--screenshot={shot}", "--window-size=1400,4000", report.as_uri()
    )
    assert done.returncode == 0 and shot.stat().st_size > 10_000


def test_the_observers_catch_requests_and_errors(tmp_path: Path) -> None:
    """The check above can fail: an external image and a throwing script are both caught."""
    page = (
        "<html><head></head><body><img src='http://127.0.0.1:9/x.png'>"
        "<script>throw new Error('boom')</script></body></html>"
    )
    seen = _observe(tmp_path, page)
    assert any("boom" in error for error in seen["errors"])
    assert any(url.startswith("http://127.0.0.1:9/") for url in seen["resources"])
