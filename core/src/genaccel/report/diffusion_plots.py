"""The diffusion characterization's sweeps as plots (Golden et al. 2024): Fig. 10, Attention and Convolution
time over image size with eager attention and SDPA; Fig. 12, temporal against spatial attention, time and FLOPs;
Fig. 14, both over the frame count.  Each returns None when no workload has the data."""

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
