"""Reports' plots of a group of cases: speedup bars, latency distributions, sequence-length sweeps, time by
phase and per-step time over position.  Each ``*_figure`` returns ``(figure, hover titles)`` or None
(nothing to draw); ``plot_*`` write it as a PNG (report.md), :func:`genaccel.report.svg.to_svg` as inline
SVG (report.html)."""

from __future__ import annotations

import statistics
from pathlib import Path

from ..plugin.specs import REFERENCE_DECODERS
from .figure import pyplot, save
from .tables import case_phases, contended, per_s, throughput_of, throughput_spread

STEP_COLOR, REFERENCE_COLOR, POINT_COLOR = "#3b75af", "#999999", "#d1603d"


def _plot_label(case: dict) -> str:
    """A bar's name: the whole stack on one line (the bars lie horizontally, one label per row, so
    every stack stays readable however many steps it has), marked when measured under contention."""
    return case["label"].replace("+", " + ") + ("  [INVALID: contended]" if contended(case) else "")


def _rows_figure(n: int, width: float = 9):
    plt = pyplot()
    return plt.subplots(figsize=(width, 1.2 + 0.45 * n))


def speedup_figure(cases: list[dict], title: str):
    """Horizontal bars of each case's throughput over the first stack's (references grey, contended hatched)."""
    ok = [c for c in cases if throughput_of(c)]
    steps = [c for c in ok if c.get("decoder") not in REFERENCE_DECODERS]
    if not steps:
        return None
    base = throughput_of(steps[0])
    values = [throughput_of(c) / base for c in ok]
    colors = [REFERENCE_COLOR if c.get("decoder") in REFERENCE_DECODERS else STEP_COLOR for c in ok]
    fig, ax = _rows_figure(len(ok))
    bars = ax.barh(range(len(ok)), values, color=colors)
    titles = []
    for bar, val, case in zip(bars, values, ok):
        if contended(case):
            bar.set_hatch("//")
            bar.set_alpha(0.5)
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {val:.2f}×", ha="left", va="center", fontsize=8)
        sd = throughput_spread(case).get("sd")
        titles.append((bar, f"{case['label']}: {val:.3f}× ({throughput_of(case):.2f}"
                            + (f" ± {sd:.2f}" if sd is not None else "") + f" {per_s(case)})"))
    ax.axvline(1.0, color="black", lw=0.8)
    ax.set_yticks(range(len(ok)), [_plot_label(c) for c in ok], fontsize=8)
    ax.invert_yaxis()  # the first case on top
    ax.set_xlim(0, max(values) * 1.15)
    ax.set_xlabel(f"speedup over baseline ({per_s(steps[0])})")
    ax.set_title(title, fontsize=10)
    return fig, titles


def latency_figure(cases: list[dict], title: str):
    """Per-sample latency of each case: a box without fliers and every sample as a point."""
    ok = [c for c in cases if c.get("samples")]
    if not ok:
        return None
    fig, ax = _rows_figure(len(ok))
    data = [[r["latency_s"] for r in c["samples"]] for c in ok]
    ax.boxplot(data, showfliers=False, vert=False)
    titles = []
    for i, (vals, case) in enumerate(zip(data, ok), start=1):
        points = ax.scatter(vals, [i] * len(vals), s=10, alpha=0.6, color=POINT_COLOR, zorder=3)
        titles.append((points, f"{case['label']}: {len(vals)} samples, median {statistics.median(vals):.4f} s, "
                               f"min {min(vals):.4f} s, max {max(vals):.4f} s"))
    ax.set_yticks(range(1, len(ok) + 1), [_plot_label(c) for c in ok], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("per-sample latency (s)")
    ax.set_title(title, fontsize=10)
    return fig, titles


def sweep_figure(cases: list[dict], title: str):
    """Latency and activation memory against sequence length, one line per stack."""
    ok = [c for c in cases if c.get("status") == "ok" and c.get("seq_len")]
    if len({c["seq_len"] for c in ok}) < 2:
        return None
    fig, (ax1, ax2) = pyplot().subplots(1, 2, figsize=(10, 4))
    titles = []
    for label in dict.fromkeys(c["label"] for c in ok):
        pts = sorted((c["seq_len"], c["summary"]["latency_s"]["mean"], c["summary"].get("peak_memory_increase_bytes") or 0)
                     for c in ok if c["label"] == label)
        xs = [p[0] for p in pts]
        (line,) = ax1.plot(xs, [p[1] for p in pts], marker="o", label=label)
        ax2.plot(xs, [p[2] / 2**20 for p in pts], marker="o", label=label)
        titles.append((line, f"{label}: " + ", ".join(f"{n}: {lat:.4f} s" for n, lat, _ in pts)))
    for ax, ylabel in ((ax1, "mean latency (s)"), (ax2, "peak memory increase (MiB)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("sequence length")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    ax1.legend(fontsize=8)
    fig.suptitle(title)
    return fig, titles


def phase_figure(cases: list[dict], title: str):
    """Seconds per phase of each case over its timed batches, stacked (a cascade's stages, a text encoder,
    a VAE decode ...); None when no case has phases of its own."""
    shown = [c for c in cases if c.get("status") == "ok" and case_phases(c)]
    if not shown:
        return None
    names = list(dict.fromkeys(n for c in shown for n in case_phases(c)))
    colors = pyplot().get_cmap("tab10")
    fig, ax = _rows_figure(len(shown))
    left, titles = [0.0] * len(shown), []
    for j, name in enumerate(names):
        vals = [case_phases(c).get(name, 0.0) for c in shown]
        bars = ax.barh(range(len(shown)), vals, left=left, color=colors(j % 10), label=name)
        for bar, v, c in zip(bars, vals, shown):
            titles.append((bar, f"{c['label']} · {name}: {v:.4f} s ({v / sum(case_phases(c).values()):.0%})"))
        left = [a + v for a, v in zip(left, vals)]
    ax.set_yticks(range(len(shown)), [_plot_label(c) for c in shown], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("seconds over the timed batches")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(title + ": time by phase", fontsize=10)
    return fig, titles


def step_times(case: dict) -> list[float]:
    """The median over a case's samples of each decode (or denoising) step's milliseconds, by position."""
    series = [s["step_ms"] for s in case.get("samples") or () if s.get("step_ms")]
    if not series:
        return []
    return [statistics.median(s[i] for s in series if i < len(s)) for i in range(max(map(len, series)))]


def steps_figure(cases: list[dict], title: str):
    """Per-step time over position (the step's index in the output), one line per case."""
    lines = [(c, step_times(c)) for c in cases if c.get("status") == "ok"]
    lines = [(c, ys) for c, ys in lines if len(ys) >= 2]
    if not lines:
        return None
    fig, ax = pyplot().subplots(figsize=(9, 3.6))
    titles = []
    for case, ys in lines:
        (line,) = ax.plot(range(1, len(ys) + 1), ys, lw=1, label=_plot_label(case))
        titles.append((line, f"{case['label']}: median step {statistics.median(ys):.3f} ms over {len(ys)} steps"))
    ax.set_xlabel("step (position of the output token, or denoising step)")
    ax.set_ylabel("step time (ms, median over samples)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(title + ": time per step", fontsize=10)
    return fig, titles


def _png(made, path: Path) -> Path | None:
    return save(made[0], path) if made else None


def plot_speedups(cases: list[dict], path: Path, title: str) -> Path | None:
    return _png(speedup_figure(cases, title), path)


def plot_latency(cases: list[dict], path: Path, title: str) -> Path | None:
    return _png(latency_figure(cases, title), path)


def plot_sweep(cases: list[dict], path: Path, title: str) -> Path | None:
    return _png(sweep_figure(cases, title), path)
