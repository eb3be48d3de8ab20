"""Reports' PNG plots: speedup bars, latency distributions, sequence-length sweeps."""

from __future__ import annotations

from pathlib import Path

from ..plugin.specs import REFERENCE_DECODERS
from .figure import pyplot, save
from .tables import contended, per_s, throughput_of


def _plot_label(case: dict) -> str:
    """A bar's name: the whole stack on one line (the bars lie horizontally, one label per row, so
    every stack stays readable however many steps it has), marked when measured under contention."""
    return case["label"].replace("+", " + ") + ("  [INVALID: contended]" if contended(case) else "")


def plot_speedups(cases: list[dict], path: Path, title: str) -> Path | None:
    plt = pyplot()
    ok = [c for c in cases if throughput_of(c)]
    steps = [c for c in ok if c.get("decoder") not in REFERENCE_DECODERS]
    if not steps:
        return None
    base = throughput_of(steps[0])
    values = [throughput_of(c) / base for c in ok]
    colors = ["#999999" if c.get("decoder") in REFERENCE_DECODERS else "#3b75af" for c in ok]
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.45 * len(ok)))
    bars = ax.barh(range(len(ok)), values, color=colors)
    for bar, val, case in zip(bars, values, ok):
        if contended(case):
            bar.set_hatch("//")
            bar.set_alpha(0.5)
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {val:.2f}×", ha="left", va="center", fontsize=8)
    ax.axvline(1.0, color="black", lw=0.8)
    ax.set_yticks(range(len(ok)), [_plot_label(c) for c in ok], fontsize=8)
    ax.invert_yaxis()  # the first case on top
    ax.set_xlim(0, max(values) * 1.15)
    ax.set_xlabel(f"speedup over baseline ({per_s(steps[0])})")
    ax.set_title(title, fontsize=10)
    return save(fig, path)


def plot_latency(cases: list[dict], path: Path, title: str) -> Path | None:
    plt = pyplot()
    ok = [c for c in cases if c.get("samples")]
    if not ok:
        return None
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.45 * len(ok)))
    data = [[r["latency_s"] for r in c["samples"]] for c in ok]
    ax.boxplot(data, showfliers=False, vert=False)
    for i, vals in enumerate(data, start=1):
        ax.scatter(vals, [i] * len(vals), s=10, alpha=0.6, color="#d1603d", zorder=3)
    ax.set_yticks(range(1, len(ok) + 1), [_plot_label(c) for c in ok], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("per-sample latency (s)")
    ax.set_title(title, fontsize=10)
    return save(fig, path)


def plot_sweep(cases: list[dict], path: Path, title: str) -> Path | None:
    """Latency and activation memory against sequence length, one line per stack."""
    plt = pyplot()
    ok = [c for c in cases if c.get("status") == "ok" and c.get("seq_len")]
    if len({c["seq_len"] for c in ok}) < 2:
        return None
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for label in dict.fromkeys(c["label"] for c in ok):
        pts = sorted((c["seq_len"], c["summary"]["latency_s"]["mean"], c["summary"].get("peak_memory_increase_bytes") or 0)
                     for c in ok if c["label"] == label)
        xs = [p[0] for p in pts]
        ax1.plot(xs, [p[1] for p in pts], marker="o", label=label)
        ax2.plot(xs, [p[2] / 2**20 for p in pts], marker="o", label=label)
    for ax, ylabel in ((ax1, "mean latency (s)"), (ax2, "peak memory increase (MiB)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("sequence length")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    ax1.legend(fontsize=8)
    fig.suptitle(title)
    return save(fig, path)
