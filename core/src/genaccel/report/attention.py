"""The attention-call record as figures and a table (Golden et al. 2024): Fig. 8, the query and key length at
every attention call of one inference per kind; Fig. 9, the distribution of sequence lengths per image size."""

from __future__ import annotations

from pathlib import Path

from .figure import pyplot, save
from .tables import table

KIND_COLORS = {"self": "#3b75af", "spatial": "#3b75af", "cross": "#e6b422", "temporal": "#d1603d"}
STUDY_LENGTHS = ("Fig. 8: a transformer TTI model's sequence length grows linearly over an inference (Parti) or stays "
                 "constant (Muse); a diffusion UNet's varies up to 4x in a U-shaped cycle a denoising step. Fig. 9: the "
                 "distribution of a UNet's sequence lengths moves up as the image grows")


def _kinds(calls: list[dict]) -> list[str]:
    return list(dict.fromkeys(c["kind"] for c in calls))


def _period(record: dict) -> str:
    opts = record.get("period_options") or {}
    return ", ".join(f"{k}={v}" for k, v in opts.items()) or "one whole inference"


def plot_sequence_lengths(records: list[dict], path: Path) -> Path:
    """Fig. 8: a panel per workload, the query (dots) and key (crosses) length of every attention call over the
    call index, colored by kind, on a log-2 axis."""
    plt = pyplot()
    fig, axes = plt.subplots(len(records), 1, figsize=(9, 2.8 * len(records)), squeeze=False)
    for ax, rec in zip(axes[:, 0], records):
        for kind in _kinds(rec["calls"]):
            own = [c for c in rec["calls"] if c["kind"] == kind]
            x, color = [c["index"] for c in own], KIND_COLORS[kind]
            ax.scatter(x, [c["query_len"] for c in own], s=14, color=color, label=f"{kind}: query")
            ax.scatter(x, [c["key_len"] for c in own], s=22, marker="x", color=color, alpha=0.6, label=f"{kind}: key")
        ax.set_yscale("log", base=2)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel("attention call (in order)")
        ax.set_ylabel("sequence length")
        ax.grid(alpha=0.3)
        ax.set_title(f"{rec['workload']} ({_period(rec)})", fontsize=9)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    return save(fig, path)


def _log2_edges(lengths: list[int]) -> list[float]:
    """Histogram edges at powers of two (half a power either side) covering ``lengths``."""
    lo, hi = min(lengths).bit_length() - 1, max(lengths).bit_length() - 1
    return [2 ** (e - 0.5) for e in range(lo, hi + 2)]


def plot_length_histograms(sweeps: dict[str, list[dict]], path: Path) -> Path:
    """Fig. 9: a panel per workload, the number of attention calls at each query length (log-2 bins), one bar
    per image size (the workload's records, one per size)."""
    plt = pyplot()
    fig, axes = plt.subplots(len(sweeps), 1, figsize=(9, 2.8 * len(sweeps)), squeeze=False)
    for ax, (workload, records) in zip(axes[:, 0], sweeps.items()):
        data = [[c["query_len"] for c in r["calls"]] for r in records]
        labels = [f"{r['image_size']}px" if r["image_size"] else "its own size" for r in records]
        ax.hist(data, bins=_log2_edges([n for d in data for n in d]), label=labels)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("query sequence length")
        ax.set_ylabel("attention calls")
        ax.set_title(f"{workload} ({_period(records[0])})", fontsize=9)
        ax.legend(fontsize=7, title="image size", title_fontsize=7)
    return save(fig, path)


def lengths_markdown(entries: list[dict]) -> str:
    """Per workload, image size and kind: calls, query and key lengths (min–max), constant or not."""
    rows = []
    for e in entries:
        for r in e["records"]:
            for kind, s in r["lengths"].items():
                rows.append([e["workload"], str(r["image_size"] or "–"), kind, str(s["calls"]),
                             f"{s['query_min']}–{s['query_max']}", f"{s['key_min']}–{s['key_max']}",
                             "yes" if s["constant"] else "no"])
    return table(["workload", "image size", "kind", "calls", "query length", "key length", "constant"], rows)
