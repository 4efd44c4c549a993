"""Open the rendered report in real headless Chromium, offline, and check every chart drew.

This is the only test that proves the inlined JavaScript runs without a network: the string
checks in test_report.py cannot see a bundle that loads but throws. It needs /usr/bin/chromium
(Debian package `chromium`) and fails, rather than skips, without it, so CI cannot pass silently.
It also follows every link of the contents, and saves what a person would see to
reports/test-artifacts/: report.png (the whole page), report-top.png (the first screen: title,
contents, what was run), report-tables.png (the contents and the tables whose numbers carry
units: data, speed, cost) and report-charts.png (the D1 barcodes with the learning rate under
them, and the D1 curves).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.support.report_study import ARMS, CHART_IDS, SCHEDULES, render

RATIOS, PANELS = 2, 4  # of the synthetic study: D1 ratios, and ratios x arms
WIDTH, FIRST_SCREEN = 1400, 1000  # px: the window of every screenshot, and of its first screen

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
# It also follows every link of the contents (where each lands), and reads every chart's
# caption (through aria-describedby) and axis labels.
_OBSERVE_TAIL = """<script>
setTimeout(() => {
  const page = document.documentElement;
  const links = [...document.querySelectorAll("nav.toc a")].map((a) => {
    const target = document.getElementById(decodeURIComponent(a.hash.slice(1)));
    if (target) a.click();
    return {href: a.getAttribute("href"), hash: location.hash,
            target: target && target.tagName, top: target && target.getBoundingClientRect().top,
            atEnd: window.scrollY + window.innerHeight >= page.scrollHeight - 2};
  });
  window.scrollTo(0, 0);
  const charts = [...document.querySelectorAll("div.chart")].map((div) => {
    const caption = document.getElementById(div.getAttribute("aria-describedby") || "");
    return {id: div.id, caption: caption && caption.matches("p.caption") && caption.textContent,
            labels: [...div.querySelectorAll("g.role-axis-label text")].map((t) => t.textContent)};
  });
  const toc = document.querySelector("nav.toc");
  const seen = {errors: window.__errors,
                resources: performance.getEntriesByType("resource").map((e) => e.name),
                height: page.scrollHeight, width: page.scrollWidth,
                tocBottom: toc && toc.getBoundingClientRect().bottom, links, charts,
                sections: [...document.querySelectorAll("h2")].map((h) => h.id)};
  const out = document.createElement("pre");
  out.id = "observed";
  out.textContent = JSON.stringify(seen);
  document.body.appendChild(out);
}, 3000);
</script>"""


def _observe(tmp_path: Path, page: str) -> dict:
    """Open `page` (HTML text) in Chromium, in a window as wide as the screenshots, with the
    observers; return what they saw."""
    watched = tmp_path / "observed.html"
    # The first <head> opens the page; the last </body> closes it (the inlined Vega bundle
    # contains both strings too).
    page = page.replace("<head>", "<head>" + _OBSERVE_HEAD, 1)
    body, _, end = page.rpartition("</body>")
    watched.write_text(body + _OBSERVE_TAIL + "</body>" + end, encoding="utf-8")
    window = f"--window-size={WIDTH},{FIRST_SCREEN}"
    done = _run_chromium(tmp_path, window, "--dump-dom", watched.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<pre id="observed">(.*?)</pre>', done.stdout, re.S)
    assert found, "the observer never reported: the page did not finish loading"
    return json.loads(html.unescape(found.group(1)))


def _only(page: str, chart_ids: tuple[str, ...]) -> str:
    """`page` with everything but the given charts hidden: a close-up for a screenshot."""
    shown = "".join(f":not(#{chart_id})" for chart_id in chart_ids)
    style = f"<style>body > *{shown} {{ display: none !important; }}</style>"
    body, _, end = page.rpartition("</body>")
    return body + style + "</body>" + end


# Hides every element of the page but the title, the contents and the sections named in KEEP
# (each <h2> and what follows it up to the next <h2>).
_SECTIONS_ONLY = """<script>
let shown = false;
for (const element of [...document.body.children]) {
  if (element.tagName === "H2") shown = KEEP.includes(element.id);
  if (!shown && !element.matches("h1, nav.toc")) element.style.display = "none";
}
</script>"""


def _sections_only(page: str, section_ids: tuple[str, ...]) -> str:
    """`page` with only its title, contents and the given sections shown: a close-up."""
    script = _SECTIONS_ONLY.replace("KEEP", json.dumps(list(section_ids)))
    body, _, end = page.rpartition("</body>")
    return body + script + "</body>" + end


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The report with one group that did not beat its unigram reference (so the warning box
    is drawn too), and what the observers saw of it in Chromium."""
    tmp_path = tmp_path_factory.mktemp("observed")
    report, _ = render(tmp_path, stalled=("0.05", "d1_first", "constant"))
    return report, _observe(tmp_path, report.read_text(encoding="utf-8"))


def test_report_makes_no_network_request_and_logs_no_error(observed: tuple[Path, dict]) -> None:
    _, seen = observed
    assert seen["errors"] == []
    assert [url for url in seen["resources"] if not url.startswith(("file:", "data:"))] == []


def test_every_contents_link_lands_on_its_section(observed: tuple[Path, dict]) -> None:
    _, seen = observed
    assert [link["href"] for link in seen["links"]] == [f"#{i}" for i in seen["sections"]]
    assert "" not in seen["sections"] and len(seen["links"]) >= 14
    for link in seen["links"]:
        assert link["target"] == "H2" and link["hash"] == link["href"], link
        # Scrolled so the heading is at the top of the window (scroll-margin-top: 0.5em),
        # unless the page ends first: the last sections are shorter than a window.
        assert 0 <= link["top"] <= 20 or link["atEnd"], link
    assert not seen["links"][0]["atEnd"]  # the check above is not vacuous


def test_every_chart_keeps_its_caption_and_writes_tokens_for_people(
    observed: tuple[Path, dict],
) -> None:
    _, seen = observed
    charts = {chart["id"]: chart for chart in seen["charts"]}
    assert set(charts) == set(CHART_IDS)
    assert all(chart["caption"] for chart in charts.values()), charts
    for chart in charts.values():
        assert chart["labels"], chart["id"]  # drawn, with axes
        assert not [label for label in chart["labels"] if re.search(r"\d{4}", label)]
    # The tokens axis of the learning curves: 0, 1M, 2M, ... from the Vega expression.
    tokens = [label for label in charts["chart-d1-curves"]["labels"] if label.endswith("M")]
    assert len(tokens) >= 3 and all(re.fullmatch(r"\d(\.\d+)?M", label) for label in tokens)


def test_screenshots_show_the_contents_tables_and_charts(
    observed: tuple[Path, dict], tmp_path: Path
) -> None:
    """Save what a person would see, as test artifacts, in a window wide enough for the page
    (nothing cut off on the right) and a first screen tall enough for the whole contents."""
    report, seen = observed
    assert seen["width"] <= WIDTH
    assert 0 < seen["tocBottom"] <= FIRST_SCREEN
    default = Path(__file__).resolve().parents[2] / "reports" / "test-artifacts"
    artifacts = Path(os.environ.get("CURRICULAB_ARTIFACTS", default))
    artifacts.mkdir(parents=True, exist_ok=True)
    page = report.read_text(encoding="utf-8")
    charts = tmp_path / "charts.html"
    charts.write_text(_only(page, ("chart-barcodes", "chart-d1-curves")), encoding="utf-8")
    tables = tmp_path / "tables.html"
    tables.write_text(_sections_only(page, ("data", "speed", "cost")), encoding="utf-8")
    for name, source, height in (
        ("report.png", report, seen["height"]),
        ("report-top.png", report, FIRST_SCREEN),
        ("report-tables.png", tables, 2000),
        ("report-charts.png", charts, 1300),
    ):
        shot = artifacts / name
        done = _run_chromium(
            tmp_path, f"--screenshot={shot}", f"--window-size={WIDTH},{height}", source.as_uri()
        )
        assert done.returncode == 0 and shot.stat().st_size > 10_000, name


def test_the_observers_catch_requests_and_errors(tmp_path: Path) -> None:
    """The check above can fail: an external image and a throwing script are both caught."""
    page = (
        "<html><head></head><body><img src='http://127.0.0.1:9/x.png'>"
        "<script>throw new Error('boom')</script></body></html>"
    )
    seen = _observe(tmp_path, page)
    assert any("boom" in error for error in seen["errors"])
    assert any(url.startswith("http://127.0.0.1:9/") for url in seen["resources"])
