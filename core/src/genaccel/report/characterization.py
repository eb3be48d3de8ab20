"""Characterization as tables and plots: the operator breakdown per phase (the study's Fig. 4 form),
work per phase (FLOPs, bytes, arithmetic intensity, MFU, MBU), and Table II's lengths and latency
distribution (Fig. 3 form)."""

from __future__ import annotations

import statistics
from pathlib import Path

from ..engine.profiling import CATEGORIES, COLORS, OVERHEAD, shares
from .figure import pyplot, save
from .results import CaseResult, plural
from .tables import table


def work_rows(profiles: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Work per phase (FLOPs, bytes, arithmetic intensity, MFU, MBU) of each profile: (header, rows)."""
    def num(x, scale=1.0, spec=".2f"):
        return "–" if x is None else format(x / scale, spec)

    rows = []
    for p in profiles:
        for name, w in (p.get("work") or {}).get("phases", {}).items():
            rows.append([p["workload"], p["label"], name, num(w["flops"], 1e9), num(w["bytes"], 1e6, ".1f"),
                         num(w["arithmetic_intensity"], 1, ".1f"), num(w["flops_per_s"], 1e9, ".1f"),
                         num(w["mfu"] and 100 * w["mfu"], 1, ".1f"), num(w["mbu"] and 100 * w["mbu"], 1, ".0f")])
    return ["workload", "stack", "phase", "GFLOP", "MB read", "FLOP/byte", "GFLOP/s", "MFU %", "MBU %"], rows


def work_markdown(profiles: list[dict]) -> str:
    return table(*work_rows(profiles))


def breakdown_figure(profiles: list[dict]):
    """Stacked bars per workload and phase, normalized to 100%, fixed category order and colors; with
    each segment's share as its hover title."""
    plt = pyplot()
    bars = [(p, name, entry) for p in profiles for name, entry in p["phases"].items()]
    device = profiles[0]["device"]
    order = [*CATEGORIES, OVERHEAD[device]]
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(bars) + 2), 4.5))
    bottoms, titles = [0.0] * len(bars), []
    for cat in order:
        vals = [100 * shares(entry, device).get(cat, 0.0) for _, _, entry in bars]
        drawn = ax.bar(range(len(bars)), vals, bottom=bottoms, color=COLORS[cat], label=cat, edgecolor="white",
                       linewidth=0.3)
        titles += [(b, f"{p['workload']} {p['label']} · {name} · {cat}: {v:.1f}%")
                   for b, v, (p, name, _) in zip(drawn, vals, bars) if v > 0]
        bottoms = [b + v for b, v in zip(bottoms, vals)]
    labels = [f"{p['workload']}\n{p['label']}\n{name}" for p, name, _ in bars]
    ax.set_xticks(range(len(bars)), labels, fontsize=7)
    ax.set_ylabel("share of phase wall time (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left")
    ax.set_title("Where inference time goes")
    return fig, titles


def plot_breakdown(profiles: list[dict], path: Path) -> Path:
    return save(breakdown_figure(profiles)[0], path)


def breakdown_rows(profiles: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Each profile's phases: milliseconds per call, calls and each category's share: (header, rows)."""
    device = profiles[0]["device"]
    order = [*CATEGORIES, OVERHEAD[device]]
    rows = []
    for p in profiles:
        for name, entry in p["phases"].items():
            sh = shares(entry, device)
            rows.append([p["workload"], p["label"], name, f"{entry['wall_us'] / 1e3 / entry['calls']:.2f}",
                         str(entry["calls"]), *(f"{100 * sh.get(c, 0):.1f}" for c in order),
                         f"{entry['dilation']:.2f}" if entry.get("dilation") else "–"])
    return ["workload", "stack", "phase", "ms/call", "calls", *(f"{c} %" for c in order), "dilation"], rows


def breakdown_markdown(profiles: list[dict]) -> str:
    return table(*breakdown_rows(profiles))


# --- characterize ----------------------------------------------------------------------------------


def _stats(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"min": min(values), "max": max(values), "mean": statistics.fmean(values)}


def characterize(case: CaseResult) -> dict:
    """Table II form from a run's per-sample records: per-modality lengths, decode steps, latency,
    and the units of work per sample in the workload's unit."""
    recs = case.samples
    inputs = {k[len("input_"):]: _stats([r.extra[k] for r in recs]) for k in recs[0].extra if k.startswith("input_")}
    if not inputs:
        inputs = {"tokens": _stats([r.input_tokens for r in recs])}
    autoregressive = any(r.ttft_s is not None for r in recs)
    return {
        "workload": case.workload,
        "samples": len(recs),
        "input": inputs,
        "unit": case.unit,
        "units": _stats([r.units for r in recs]),
        "output_tokens": _stats([r.output_tokens for r in recs]),
        "decode_steps": _stats([r.output_tokens - 1 for r in recs]) if autoregressive else None,
        "latency_ms": _stats([r.latency_s * 1e3 for r in recs]),
    }


def characterize_rows(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Table II form of :func:`characterize`'s rows: (header, rows), one per workload and input modality."""
    def fmt(st):
        return "–" if not st else f"{st['min']:.0f} / {st['max']:.0f} / {st['mean']:.1f}"

    body = []
    for r in rows:
        for modality, st in r["input"].items():
            body.append([r["workload"], modality, fmt(st), fmt(r["output_tokens"]),
                         f"{r['decode_steps']['mean']:.1f}" if r["decode_steps"] else "N/A",
                         f"{fmt(r['units'])} {plural(r['unit'])}", f"{r['latency_ms']['mean']:.1f}", str(r["samples"])])
    return ["workload", "input modality", "input min / max / avg", "output min / max / avg", "decode steps (avg)",
            "units of work min / max / avg", "mean latency (ms)", "samples"], body


def characterize_markdown(rows: list[dict]) -> str:
    return table(*characterize_rows(rows))


def latency_distribution_figure(cases: list[dict]):
    """A histogram of end-to-end latency per sample for each workload (Fig. 3 form); ``cases`` in their JSON form."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(cases), figsize=(4 * len(cases), 3.5), squeeze=False)
    titles = []
    for ax, case in zip(axes[0], cases):
        lat = [r["latency_s"] * 1e3 for r in case["samples"]]
        _, _, patches = ax.hist(lat, bins=min(30, max(5, len(lat) // 2)), color="#3b75af")
        titles += [(p, f"{case['workload']}: {int(p.get_height())} samples from {p.get_x():.1f} ms") for p in patches]
        ax.set_title(case["workload"], fontsize=9)
        ax.set_xlabel("end-to-end latency per sample (ms)")
        ax.set_ylabel("samples")
    return fig, titles


def plot_latency_distribution(cases: list[CaseResult], path: Path) -> Path:
    return save(latency_distribution_figure([c.to_dict() for c in cases])[0], path)
