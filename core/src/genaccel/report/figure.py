"""matplotlib for reports: the non-interactive backend, imported when a figure is drawn (not at import),
and one way to write a figure and release it."""

from __future__ import annotations

from pathlib import Path

from ..files import writing


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend."""
    # matplotlib (about 0.5 s) loads only for a figure: every run writes a report, few draw one
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: Path, *, dpi: int = 120) -> Path:
    """Lay out, write and close ``fig``; returns ``path``."""
    fig.tight_layout()
    try:
        with writing(path):  # a full disk: one line naming the figure, not PIL's traceback
            fig.savefig(path, dpi=dpi)
    finally:
        pyplot().close(fig)
    return path
