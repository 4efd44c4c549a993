"""Reading a rendered report page in tests: its body, its sections' tables, the text a reader
sees, the outline of headings and contents, and the mark type of a chart spec."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from typing import Any


def body_of(page: str) -> str:
    """The page from its <h1> on: past the inlined Vega bundle, which may hold any text."""
    return page[page.rindex("<h1>") :]


def section_tables(page: str) -> dict[str, list[list[str]]]:
    """<h2> or <h3> heading -> rows of the first table under it (before the next heading), as
    cell texts (tags stripped)."""
    found = {}
    for part in re.split(r"<h[23]\b[^>]*>", body_of(page))[1:]:
        heading, rest = re.split(r"</h[23]>", part, maxsplit=1)
        block = re.search(r"<table>(.*?)</table>", rest, re.S)
        if block:
            rows = re.findall(r"<tr>(.*?)</tr>", block.group(1), re.S)
            found[html.unescape(heading)] = [
                [
                    html.unescape(re.sub(r"<[^>]+>", "", cell))
                    for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)
                ]
                for row in rows
            ]
    return found


def table_under(page: str, prefix: str) -> list[list[str]]:
    """Rows of the table under the one heading that starts with `prefix` (header row first)."""
    (rows,) = [rows for heading, rows in section_tables(page).items() if heading.startswith(prefix)]
    return rows


def mark_type(spec: dict[str, Any]) -> str:
    mark = spec["mark"]
    return mark if isinstance(mark, str) else mark["type"]


class PageOutline(HTMLParser):
    """The parts of a rendered page that link to each other: every element id, the <h2>
    sections (id, heading), the contents' links, and each chart <div> with the text of the
    caption its aria-describedby names."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.sections: list[tuple[str | None, str]] = []
        self.contents: list[str] = []  # href of every link in <nav class="toc">
        self.charts: dict[str, str | None] = {}  # chart div id -> aria-describedby
        self.captions: dict[str, str] = {}  # <p class="caption"> id -> its text
        self._in: list[str] = []  # open elements that collect text: "h2", "caption", "nav"
        self._text: list[str] = []
        self._h2_id: str | None = None
        self._caption_id = ""
        self.feed(body_of(page))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if named.get("id"):
            self.ids.append(str(named["id"]))
        if tag == "h2":
            self._in.append("h2")
            self._h2_id, self._text = named.get("id"), []
        elif tag == "p" and named.get("class") == "caption":
            self._in.append("caption")
            self._caption_id, self._text = str(named.get("id")), []
        elif tag == "nav" and named.get("class") == "toc":
            self._in.append("nav")
        elif tag == "a" and "nav" in self._in:
            self.contents.append(str(named.get("href")))
        elif tag == "div" and named.get("class") == "chart":
            self.charts[str(named["id"])] = named.get("aria-describedby")

    def handle_data(self, data: str) -> None:
        self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "h2" and self._in[-1:] == ["h2"]:
            self.sections.append((self._h2_id, "".join(self._text)))
        elif tag == "p" and self._in[-1:] == ["caption"]:
            self.captions[self._caption_id] = "".join(self._text).strip()
        elif not (tag == "nav" and self._in[-1:] == ["nav"]):
            return
        self._in.pop()


def visible_text(page: str) -> str:
    """The page from its <h1> on without <script> elements: the HTML a reader sees."""
    return re.sub(r"<script\b.*?</script>", "", body_of(page), flags=re.S)
