"""Figures of the studies' forms for HTML reports: SDPA's speedup beside the study's Table II, tensor-parallel
scaling, the LayerSkip (exit layer × draft length) sweep as a heatmap, and the diffusion characterization's
sequence lengths (curve and histogram), Conv against Attention over image size and temporal against spatial
attention over frames.  Each returns ``(figure, hover titles)`` or None, as :mod:`genaccel.report.plots`."""

from __future__ import annotations

from collections import Counter

from .figure import pyplot

OURS, STUDY = "#3b75af", "#bbbbbb"


def table2_figure(rows: list[dict]):
    """Grouped bars: each workload's ``sdpa`` over baseline (:func:`genaccel.report.study.sdpa_speedups`)
    beside the study's Flash Attention speedup where it has one."""
    if not rows:
        return None
    fig, ax = pyplot().subplots(figsize=(max(5, 1.3 * len(rows) + 2), 3.8))
    xs = range(len(rows))
    ours = ax.bar([x - 0.2 for x in xs], [r["speedup"] for r in rows], width=0.4, color=OURS, label="genaccel: sdpa / baseline")
    study = ax.bar([x + 0.2 for x in xs], [r["study_speedup"] or 0 for r in rows], width=0.4, color=STUDY,
                   label="study: Flash Attention (Golden et al. 2024, Table II)")
    titles = [(b, f"{r['workload']} batch {r['batch_size']}: {r['speedup']:.3f}×") for b, r in zip(ours, rows)]
    titles += [(b, f"{r['study_model']}: {r['study_speedup']:.2f}× in the study") for b, r in zip(study, rows)
               if r["study_speedup"]]
    ax.axhline(1.0, color="black", lw=0.8)
    ax.set_xticks(list(xs), [f"{r['workload']}\nbatch {r['batch_size']}" for r in rows], fontsize=8)
    ax.set_ylabel("end-to-end speedup")
    ax.legend(fontsize=7)
    return fig, titles


def scaling_figure(doc: dict):
    """``scaling.json``: each stack's tokens/s and parallel efficiency over the number of ranks."""
    rows = [r for r in doc.get("rows", []) if r.get("tokens_per_s")]
    if not rows:
        return None
    fig, (ax1, ax2) = pyplot().subplots(1, 2, figsize=(10, 3.8))
    titles = []
    for label in dict.fromkeys(r["label"] for r in rows):
        pts = sorted((r["tp"], r["tokens_per_s"], r["efficiency"]) for r in rows if r["label"] == label)
        (line,) = ax1.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
        ax2.plot([p[0] for p in pts if p[2] is not None], [p[2] for p in pts if p[2] is not None], marker="o", label=label)
        titles.append((line, f"{label}: " + ", ".join(f"tp{n} {t:.1f} tok/s" for n, t, _ in pts)))
    ax1.set_ylabel("tokens/s")
    ax2.set_ylabel("parallel efficiency")
    ax2.axhline(1.0, color="black", lw=0.8)
    for ax in (ax1, ax2):
        ax.set_xlabel("tensor-parallel ranks")
        ax.set_xticks(doc.get("sizes") or sorted({r["tp"] for r in rows}))
        ax.grid(alpha=0.3)
    ax1.legend(fontsize=7)
    return fig, titles


def layerskip_heatmap(doc: dict):
    """``sweep.json``: speedup over plain greedy at every (exit layer, draft length), annotated, the best framed;
    a pair whose tokens differ from greedy's is marked."""
    pairs = doc.get("pairs") or []
    if not pairs:
        return None
    exits = sorted({p["exit_layer"] for p in pairs})
    lens = sorted({p["draft_len"] for p in pairs})
    grid = [[None] * len(lens) for _ in exits]
    for p in pairs:
        grid[exits.index(p["exit_layer"])][lens.index(p["draft_len"])] = p
    values = [[p["speedup"] if p else float("nan") for p in row] for row in grid]
    fig, ax = pyplot().subplots(figsize=(1.1 * len(lens) + 3, 0.7 * len(exits) + 1.8))
    image = ax.imshow(values, cmap="RdYlGn", vmin=min(0.5, *(p["speedup"] for p in pairs)),
                      vmax=max(1.5, *(p["speedup"] for p in pairs)), aspect="auto")
    best = doc.get("best") or {}
    for i, row in enumerate(grid):
        for j, p in enumerate(row):
            if p:
                mark = "" if p["same_tokens"] else " ≠"
                weight = "bold" if (p["exit_layer"], p["draft_len"]) == (best.get("exit_layer"), best.get("draft_len")) else None
                ax.text(j, i, f"{p['speedup']:.2f}×{mark}", ha="center", va="center", fontsize=8, fontweight=weight)
    ax.set_xticks(range(len(lens)), [str(k) for k in lens])
    ax.set_yticks(range(len(exits)), [str(e) for e in exits])
    ax.set_xlabel("draft length k")
    ax.set_ylabel("exit layer E")
    fig.colorbar(image, ax=ax, label="speedup over plain greedy")
    titles = [(image, "speedup over plain greedy at each (E, k); ≠: tokens differ from greedy's")]
    return fig, titles


def sequence_figure(entry: dict):
    """A diffusion workload's attention sequence lengths: over the calls of the first step (the U-shaped
    cycle, Figs. 8-9) and as a histogram over every call of the inference."""
    calls = [c for c in entry["eager"]["sequence_profile"] if c["kind"] == "spatial"]
    if not calls:
        return None
    first = [c["query_len"] for c in calls if c["step"] == 0]
    fig, (ax1, ax2) = pyplot().subplots(1, 2, figsize=(10, 3.4))
    (line,) = ax1.plot(range(1, len(first) + 1), first, marker=".", color=OURS)
    ax1.set_xlabel("spatial self-attention call (step 0, in order)")
    ax1.set_ylabel("sequence length")
    ax1.grid(alpha=0.3)
    counts = Counter(c["query_len"] for c in entry["eager"]["sequence_profile"])
    lengths = sorted(counts)
    bars = ax2.bar([str(n) for n in lengths], [counts[n] for n in lengths], color=OURS)
    ax2.set_xlabel("sequence length (every attention call)")
    ax2.set_ylabel("calls")
    titles = [(line, "sequence lengths of step 0: " + " ".join(map(str, first)))]
    titles += [(b, f"{n} tokens: {counts[n]} calls") for b, n in zip(bars, lengths)]
    fig.suptitle(f"{entry['workload']}: attention sequence length", fontsize=10)
    return fig, titles


def image_sweep_figure(entry: dict):
    """Attention and Conv seconds over image size, with eager attention and with SDPA (Fig. 10 form)."""
    rows = entry.get("image_sweep") or []
    if len(rows) < 2:
        return None
    fig, ax = pyplot().subplots(figsize=(7, 3.6))
    xs = [r["image_size"] for r in rows]
    titles = []
    for attention, style in (("eager", "--"), ("sdpa", "-")):
        for part, color in (("attention_s", "#d1603d"), ("conv_s", OURS)):
            (line,) = ax.plot(xs, [r[attention][part] for r in rows], style, marker="o", color=color,
                              label=f"{part[:-2].capitalize()} ({attention})")
            titles.append((line, f"{part[:-2]} with {attention}: " + ", ".join(
                f"{x}: {r[attention][part]:.3f} s" for x, r in zip(xs, rows))))
    ax.set_xlabel("image size (pixels)")
    ax.set_ylabel("seconds per inference")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return fig, titles


def frame_sweep_figure(entry: dict):
    """Temporal against spatial attention FLOPs and seconds over frame counts (Fig. 14 form)."""
    rows = entry.get("frame_sweep") or []
    if len(rows) < 2:
        return None
    fig, (ax1, ax2) = pyplot().subplots(1, 2, figsize=(10, 3.4))
    xs = [r["frames"] for r in rows]
    titles = []
    for kind, color in (("temporal", "#d1603d"), ("spatial", OURS)):
        (a,) = ax1.plot(xs, [r[kind]["flops"] / 1e9 for r in rows], marker="o", color=color, label=kind)
        (b,) = ax2.plot(xs, [r[kind]["seconds"] for r in rows], marker="o", color=color, label=kind)
        titles += [(a, f"{kind} GFLOPs: " + ", ".join(f"{x}: {r[kind]['flops'] / 1e9:.3f}" for x, r in zip(xs, rows))),
                   (b, f"{kind} seconds: " + ", ".join(f"{x}: {r[kind]['seconds']:.4f}" for x, r in zip(xs, rows)))]
    ax1.set_ylabel("attention GFLOPs")
    ax2.set_ylabel("attention seconds")
    for ax in (ax1, ax2):
        ax.set_xlabel("frames")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return fig, titles
