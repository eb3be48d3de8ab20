"""Reports as one self-contained HTML page: the page model (sections of tables, figures, folded details
and media grids), its Jinja2 template (``templates/page.html.j2``: CSS and a table-sorting script
inline, nothing fetched), and the writing of it.

Jinja2 (a torch dependency, so already installed) escapes every value; figures are matplotlib SVG
written inline (:mod:`genaccel.report.svg`), media inline as data URIs (:mod:`genaccel.report.media`),
so the file opens anywhere, offline, with no server.  Each command builds a :class:`Page` from its
JSON (:mod:`genaccel.report.html_report`, :mod:`genaccel.report.html_pages`).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import attrs
import jinja2

from ..files import write_text


@attrs.frozen
class Cell:
    """A table cell: its text, the value it sorts by (numbers sort as numbers), a hover title and a class."""

    text: str
    sort: float | str | None = None
    title: str | None = None
    cls: str | None = None


_NUMBER = re.compile(r"[-+]?[\d,]*\.?\d+")


def cell(value) -> Cell:
    """A cell of ``value``; text that starts with a number sorts by that number."""
    if isinstance(value, Cell):
        return value
    text = str(value)
    number = _NUMBER.match(text)
    return Cell(text, sort=float(number.group(0).replace(",", "")) if number else None)


@attrs.frozen
class Table:
    header: list[str]
    rows: list[list[Cell]] = attrs.field(converter=lambda rows: [[cell(c) for c in r] for r in rows])
    caption: str | None = None
    sortable: bool = True
    kind: str = "table"


@attrs.frozen
class Figure:
    svg: str  # an inline <svg> element (markup genaccel made, not escaped)
    caption: str | None = None
    kind: str = "figure"


@attrs.frozen
class Text:
    """A paragraph; ``strong`` marks it (a headline, a warning)."""

    text: str
    strong: bool = False
    kind: str = "text"


@attrs.frozen
class Media:
    """One generated output: an image or video frame (``tag`` img), or speech (``tag`` audio), inline."""

    tag: str
    src: str | None  # a data URI; None when the file is missing (said in the caption, no broken element)
    caption: str
    title: str | None = None


@attrs.frozen
class MediaGrid:
    """Generated outputs side by side: a row per sample (same prompt and seed), a column per case."""

    columns: list[str]
    rows: list[tuple[str, list[Media | None]]]
    caption: str | None = None
    kind: str = "media"


@attrs.frozen
class Details:
    """A folded block (``<details>``): its summary line and its blocks."""

    summary: str
    blocks: list = attrs.field(factory=list)
    kind: str = "details"


@attrs.frozen
class Section:
    title: str
    blocks: list = attrs.field(factory=list)


@attrs.frozen
class Page:
    """What a report page shows, in order: title, provenance, the summary table and headline ratios
    first, then a section per workload group (or per part of a characterization)."""

    title: str
    environment: list[tuple[str, str]] = attrs.field(factory=list)
    summary: list = attrs.field(factory=list)
    sections: list[Section] = attrs.field(factory=list)


@functools.cache
def _template():
    env = jinja2.Environment(loader=jinja2.PackageLoader("genaccel.report", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    return env.get_template("page.html.j2")


def render_page(page: Page) -> str:
    return _template().render(page=page)


def write_page(page: Page, path: Path) -> Path:
    """Render ``page`` and write it (atomically) to ``path``."""
    write_text(Path(path), render_page(page))
    return Path(path)
