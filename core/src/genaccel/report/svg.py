"""matplotlib figures as inline SVG for HTML reports: text kept as text (small, searchable), ids made
unique per figure (several SVGs share one page's id space), and hover titles on chosen artists (a
bar's exact value, a line's case) without any script."""

from __future__ import annotations

import io
import re
import uuid
from html import escape

import matplotlib

from .figure import pyplot


def to_svg(fig, titles: list[tuple[object, str]] = ()) -> str:
    """``fig`` as an ``<svg>`` element (closed after); each (artist, text) of ``titles`` shows its text on hover."""
    uid = "g" + uuid.uuid4().hex[:10]
    gids = {}
    for k, (artist, text) in enumerate(titles):
        gid = f"{uid}-{k}"
        artist.set_gid(gid)
        gids[gid] = text
    buf = io.StringIO()
    try:
        fig.tight_layout()
        with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": uid}):
            fig.savefig(buf, format="svg", metadata={"Date": None})
    finally:
        pyplot().close(fig)
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]  # no XML declaration or DOCTYPE inside HTML
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, count=1, flags=re.S)
    svg = re.sub(r'id="(figure|axes|patch|line2d|text|legend|matplotlib\.axis|xtick|ytick|PathCollection)_(\d+)"',
                 lambda m: f'id="{uid}-{m.group(1)}-{m.group(2)}"', svg)  # unique on the page
    for gid, text in gids.items():
        svg = svg.replace(f'<g id="{gid}">', f'<g id="{gid}"><title>{escape(text)}</title>', 1)
    return svg.replace("<svg ", f'<svg role="img" aria-label="figure {uid}" ', 1)
