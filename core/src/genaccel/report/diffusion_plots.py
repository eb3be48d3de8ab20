"""The diffusion characterization as plots (Golden et al. 2024): Fig. 7, the operator breakdown with baseline
attention and SDPA; Fig. 10, Attention and Convolution time over image size with eager attention and SDPA;
Fig. 12, temporal against spatial attention, time and FLOPs; Fig. 14, both over the frame count; and a
denoising step's peak memory over image size beside the similarity-matrix model (Section V-B).  Each returns
None when no workload has the data."""

from __future__ import annotations

from pathlib import Path

from .figure import pyplot, save

STYLES = {"eager": "--", "sdpa": "-"}
COLORS = {"attention_s": "#d1603d", "conv_s": "#8e7cc3", "temporal": "#d1603d", "spatial": "#3b75af"}


def plot_conv_attention(entries: list[dict], path: Path) -> Path | None:
    """Fig. 10: a panel per workload with an image-size sweep, Attention and Conv seconds per inference over
    image size, eager (dashed) and sdpa (solid)."""
    swept = [e for e in entries if e.get("image_sweep")]
    if not swept:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, len(swept), figsize=(5 * len(swept), 3.8), squeeze=False)
    for ax, e in zip(axes[0], swept):
        sizes = [r["image_size"] for r in e["image_sweep"]]
        for impl, style in STYLES.items():
            for key, name in (("attention_s", "Attention"), ("conv_s", "Conv")):
                ax.plot(sizes, [r[impl][key] for r in e["image_sweep"]], style, marker="o", color=COLORS[key],
                        label=f"{name} ({impl})")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("image size (px)")
        ax.set_ylabel("seconds per inference")
        ax.set_title(e["workload"], fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return save(fig, path)


def plot_temporal_spatial(entries: list[dict], path: Path) -> Path | None:
    """Fig. 12: per video workload, temporal and spatial attention seconds and GFLOPs of one inference (eager)."""
    video = [e for e in entries if "temporal" in e["eager"]["summary"]["kinds"]]
    if not video:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(len(video), 2, figsize=(8, 3.2 * len(video)), squeeze=False)
    for (ax_t, ax_f), e in zip(axes, video):
        kinds = e["eager"]["summary"]["kinds"]
        names = ["temporal", "spatial"]
        ax_t.bar(names, [kinds[k]["seconds"] for k in names], color=[COLORS[k] for k in names])
        ax_f.bar(names, [kinds[k]["flops"] / 1e9 for k in names], color=[COLORS[k] for k in names])
        ax_t.set_ylabel("seconds")
        ax_f.set_ylabel("GFLOPs")
        ax_t.set_title(f"{e['workload']}: attention time", fontsize=9)
        ax_f.set_title(f"{e['workload']}: attention FLOPs", fontsize=9)
    return save(fig, path)


def plot_frame_sweep(entries: list[dict], path: Path) -> Path | None:
    """Fig. 14: per video workload with a frame sweep, temporal and spatial attention GFLOPs and seconds over
    the frame count (sdpa)."""
    swept = [e for e in entries if e.get("frame_sweep")]
    if not swept:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(len(swept), 2, figsize=(9, 3.4 * len(swept)), squeeze=False)
    for (ax_f, ax_t), e in zip(axes, swept):
        frames = [r["frames"] for r in e["frame_sweep"]]
        for kind in ("temporal", "spatial"):
            ax_f.plot(frames, [r[kind]["flops"] / 1e9 for r in e["frame_sweep"]], marker="o", color=COLORS[kind],
                      label=kind)
            ax_t.plot(frames, [r[kind]["seconds"] for r in e["frame_sweep"]], marker="o", color=COLORS[kind],
                      label=kind)
        for ax, ylabel in ((ax_f, "GFLOPs"), (ax_t, "seconds")):
            ax.set_xlabel("frames")
            ax.set_ylabel(ylabel)
            ax.set_title(f"{e['workload']}: attention {ylabel} over frames", fontsize=9)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    return save(fig, path)


#: Fig. 7's colours, the operator profile's where the category is the same
BAR_COLORS = {"Conv": "#8e7cc3", "Linear": "#3b75af", "Attention": "#d1603d", "Temporal attention": "#f1a340",
              "Norm": "#6aa84f", "Resample": "#45818e", "Other": "#c9c9c9"}


def plot_operator_breakdown(entries: list[dict], path: Path) -> Path | None:
    """Fig. 7: per workload two stacked bars, the operator categories' time with baseline (eager) attention and
    with SDPA, both over the baseline's inference time (the baseline bar is 1)."""
    shown = [e for e in entries if e.get("fig7")]
    if not shown:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(2.2 + 1.6 * len(shown), 4))
    labelled = set()
    for i, e in enumerate(shown):
        fig7 = e["fig7"]
        for j, impl in enumerate(("eager", "sdpa")):
            bottom = 0.0
            for category in fig7["categories"]:
                height = fig7["bars"][impl][category]
                if height <= 0:
                    continue
                ax.bar(3 * i + j, height, bottom=bottom, color=BAR_COLORS[category], width=0.8,
                       label=None if category in labelled else category)
                labelled.add(category)
                bottom += height
            ax.text(3 * i + j, bottom + 0.01, f"{bottom:.2f}", ha="center", fontsize=7)
    ax.set_xticks([3 * i + j for i in range(len(shown)) for j in (0, 1)],
                  [f"{e['workload']}\n{impl}" for e in shown for impl in ("baseline", "sdpa")], fontsize=7)
    ax.set_ylabel("time / baseline inference time")
    ax.set_title("Operator breakdown (Fig. 7)", fontsize=9)
    ax.legend(fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left")
    return save(fig, path)


MEMORY_LINES = (("eager_peak_bytes", "measured peak, eager", "-", "#d1603d"),
                ("sdpa_peak_bytes", "measured peak, sdpa", "-", "#3b75af"),
                ("excess_bytes", "measured eager - sdpa", ":", "#7f7f7f"),
                ("model_largest_bytes", "model: largest similarity matrix", "--", "#6aa84f"),
                ("model_total_bytes", "model: sum over the forward", "-.", "#a64d79"))


def plot_memory(entries: list[dict], path: Path) -> Path | None:
    """Peak memory of a denoising step over image size, eager and SDPA, beside the study's similarity-matrix
    model (Section V-B): a panel per workload, MiB on a log scale."""
    shown = [e for e in entries if e.get("memory")]
    if not shown:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, len(shown), figsize=(5.5 * len(shown), 4), squeeze=False)
    for ax, e in zip(axes[0], shown):
        rows = [{**r, "excess_bytes": r["eager_peak_bytes"] - r["sdpa_peak_bytes"]} for r in e["memory"]]
        sizes = [r["image_size"] for r in rows]
        for key, label, style, color in MEMORY_LINES:
            points = [(s, r[key] / 2**20) for s, r in zip(sizes, rows) if r[key] > 0]  # a log axis shows no zero
            if points:
                ax.plot(*zip(*points), style, marker="o", color=color, label=label)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("image size (px)")
        ax.set_ylabel("MiB")
        ax.set_title(f"{e['workload']}: a denoising step's memory", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return save(fig, path)
