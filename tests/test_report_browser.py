"""Open the rendered report in real headless Chromium, offline, and check every chart drew.

This is the only test that proves the inlined JavaScript runs without a network: the string
checks in test_report.py cannot see a bundle that loads but throws. It needs /usr/bin/chromium
(Debian package `chromium`) and fails, rather than skips, without it, so CI cannot pass silently.
It saves what a person would see to reports/test-artifacts/: report.png (the whole page) and
report-charts.png (the D1 barcodes with the learning rate under them, and the D1 curves).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.report_study import ARMS, CHART_IDS, SCHEDULES, render

RATIOS, PANELS = 2, 4  # of the synthetic study: D1 ratios, and ratios x arms

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
    """Collects the elements nested inside each <div id=...> of interest."""

    def __init__(self, ids: tuple[str, ...]) -> None:
        super().__init__()
        self.ids = ids
        self.tags: dict[str, list[str]] = {chart_id: [] for chart_id in ids}
        self.errors: dict[str, list[str]] = {chart_id: [] for chart_id in ids}
        # Per chart: (tag, attributes, class of the innermost enclosing <g>) of every element.
        self.elements: dict[str, list[tuple[str, dict, str]]] = {chart_id: [] for chart_id in ids}
        self._open: list[tuple[str, str | None, str]] = []  # (tag, chart id, <g> class)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        inside, group = self._open[-1][1:] if self._open else (None, "")
        named = dict(attrs)
        if inside is not None:
            self.tags[inside].append(tag)
            self.elements[inside].append((tag, named, group))
            if ("class", "chart-error") in attrs:
                self.errors[inside].append(tag)
        own_id = named.get("id")
        own_group = (named.get("class") or "") if tag == "g" else group
        self._open.append((tag, own_id if own_id in self.ids else inside, own_group))

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


def _marks(parser: _ChartContents, chart_id: str, kind: str) -> list[dict]:
    """Attributes of every drawn `kind` mark (line, rect, rule) of a chart's data layers."""
    return [
        attrs
        for _, attrs, group in parser.elements[chart_id]
        if group.startswith(f"mark-{kind} role-mark") and attrs.get("role") == "graphics-symbol"
    ]


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
    # Under every schedule's strip (one rect per stretch) a line per learning-rate arm.
    strips = len(SCHEDULES) * RATIOS
    assert len(_marks(parser, "chart-barcodes", "rect")) == strips * 50
    lines = _marks(parser, "chart-barcodes", "line")
    for arm in ARMS:
        assert sum(f"arm: {arm};" in line["aria-label"] for line in lines) == strips
    assert len(lines) == strips * len(ARMS)
    legends = [g for tag, g, _ in parser.elements["chart-barcodes"] if tag == "g"]
    assert sum(g.get("class") == "mark-group role-legend" for g in legends) == 2  # share, arm
    # Each learning-curve panel draws the unigram reference of every schedule, dashed.
    for chart_id in ("chart-d1-curves", "chart-d2-curves"):
        rules = _marks(parser, chart_id, "rule")
        assert len(rules) == PANELS * len(SCHEDULES)
        assert all(rule.get("stroke-dasharray") for rule in rules)
        assert all("unigram reference" in rule["aria-label"] for rule in rules)


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
                resources: performance.getEntriesByType("resource").map((e) => e.name),
                height: document.documentElement.scrollHeight};
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


def _only(page: str, chart_ids: tuple[str, ...]) -> str:
    """`page` with everything but the given charts hidden: a close-up for a screenshot."""
    shown = "".join(f":not(#{chart_id})" for chart_id in chart_ids)
    style = f"<style>body > *{shown} {{ display: none !important; }}</style>"
    body, _, end = page.rpartition("</body>")
    return body + style + "</body>" + end


def test_report_makes_no_network_request_and_logs_no_error(tmp_path: Path) -> None:
    # With one group that did not beat its unigram reference: the warning box is drawn too.
    report, _ = render(tmp_path, stalled=("0.05", "d1_first", "constant"))
    page = report.read_text(encoding="utf-8")
    seen = _observe(tmp_path, page)
    assert seen["errors"] == []
    assert [url for url in seen["resources"] if not url.startswith(("file:", "data:"))] == []
    # Save what a person would see, as test artifacts: the whole page, and a close-up.
    default = Path(__file__).resolve().parents[1] / "reports" / "test-artifacts"
    artifacts = Path(os.environ.get("CURRICULAB_ARTIFACTS", default))
    artifacts.mkdir(parents=True, exist_ok=True)
    close_up = tmp_path / "charts.html"
    close_up.write_text(_only(page, ("chart-barcodes", "chart-d1-curves")), encoding="utf-8")
    for name, source, height in (
        ("report.png", report, seen["height"]),
        ("report-charts.png", close_up, 1300),
    ):
        shot = artifacts / name
        done = _run_chromium(
            tmp_path, f"--screenshot={shot}", f"--window-size=1400,{height}", source.as_uri()
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
