"""The study's roofline (Golden et al. 2024, Fig. 5) on this machine: each workload's arithmetic intensity (FLOPs of
one inference per byte of its parameters, the study's "ratio of FLOPs to required model capacity") against the
FLOP/s it attained, under the roof ``min(GEMM peak, intensity × read bandwidth)``; memory-bound left of the ridge
point (peak / bandwidth), compute-bound right of it, beside what the study found for the same kind of model.

Pure functions of the data :mod:`genaccel.run.roofline` measures: the entry, the Markdown table, the figure and the
HTML section."""

from __future__ import annotations

from pathlib import Path

from .figure import pyplot, save
from .html import Section, Table, Text
from .tables import table

STUDY_ROOFLINE = ("Fig. 5 (A100): diffusion models have a higher arithmetic intensity than transformer-based TTI "
                  "models and fall in the compute-bound region; transformer-based models are memory-bandwidth bound "
                  "at low batch sizes (arithmetic intensity: the ratio of FLOPs to required model capacity). Sec. II: "
                  "diffusion TTI models' intensity is up to 100× an LLM's")

#: the study's classification of the models it places (by workload family); the others it does not characterize
STUDY_BOUND = {
    "stable-diffusion": "compute-bound (diffusion)",
    "imagen": "compute-bound (diffusion)",
    "make-a-video": "compute-bound (diffusion)",
    "muse": "memory-bound (transformer, batch 1)",
    "parti": "memory-bound (transformer, batch 1)",
    "phenaki": "memory-bound (transformer, batch 1)",
    "llama": "memory-bound (LLM, batch 1)",
}
BOUND_COLORS = {"memory-bound": "#3b75af", "compute-bound": "#d1603d"}


def roof(intensity: float, peak: float, bandwidth: float) -> float:
    """The attainable FLOP/s at ``intensity`` (FLOPs per byte): the bandwidth slope up to the ridge, then the peak."""
    return min(peak, intensity * bandwidth)


def bound(intensity: float, ridge: float) -> str:
    """``memory-bound`` left of the ridge point (``intensity < ridge``), else ``compute-bound``."""
    return "memory-bound" if intensity < ridge else "compute-bound"


def study_bound(workload: str) -> str | None:
    """What the study found for the workload's kind of model, or None where it does not place it."""
    return STUDY_BOUND.get(workload.split("/")[0])


def roofline_entry(workload: str, *, flops: int, parameters: int, parameter_bytes: int, seconds: float,
                   machine: dict) -> dict:
    """A workload's point: its work, intensity and attained FLOP/s, the roof there, its classification on this
    machine (``machine``: ``peak_flops_per_s``, ``bandwidth_bytes_per_s``, ``ridge_flops_per_byte``) and the study's."""
    intensity = flops / parameter_bytes
    return {"workload": workload, "flops": flops, "parameters": parameters, "parameter_bytes": parameter_bytes,
            "seconds": seconds, "intensity_flops_per_byte": intensity, "attained_flops_per_s": flops / seconds,
            "roof_flops_per_s": roof(intensity, machine["peak_flops_per_s"], machine["bandwidth_bytes_per_s"]),
            "bound": bound(intensity, machine["ridge_flops_per_byte"]), "study": study_bound(workload),
            "machine": machine}


def _points(entries: list[dict]) -> list[dict]:
    return [e["roofline"] for e in entries if e.get("roofline")]


def _machine_line(machine: dict) -> str:
    return (f"{machine['device']}, {machine['dtype']}: GEMM peak {machine['peak_flops_per_s'] / 1e9:.1f} GFLOP/s, "
            f"read bandwidth {machine['bandwidth_bytes_per_s'] / 1e9:.1f} GB/s, ridge point "
            f"{machine['ridge_flops_per_byte']:.2f} FLOP/B")


def roofline_rows(points: list[dict]) -> tuple[list[str], list[list[str]]]:
    """The table's header and a row per workload."""
    header = ["workload", "GFLOPs / inference", "parameters (MB)", "intensity (FLOP/B)", "inference (s)",
              "attained GFLOP/s", "roof GFLOP/s", "this machine", "study (Golden et al. 2024)"]
    rows = [[p["workload"], f"{p['flops'] / 1e9:.4g}", f"{p['parameter_bytes'] / 1e6:.3g}",
             f"{p['intensity_flops_per_byte']:.3g}", f"{p['seconds']:.3g}", f"{p['attained_flops_per_s'] / 1e9:.3g}",
             f"{p['roof_flops_per_s'] / 1e9:.3g}", p["bound"], p["study"] or "– (not in the study)"] for p in points]
    return header, rows


def roofline_markdown(entries: list[dict]) -> str:
    """The roofline section: the machine's roof, the table, the study's finding."""
    points = _points(entries)
    if not points:
        return ""
    return "\n".join(["## Roofline (Fig. 5)", "", f"Roof: {_machine_line(points[0]['machine'])}. Intensity: FLOPs of "
                      "one inference of one sample (baseline stack, counted in eager mode) per byte of parameters.", "",
                      table(*roofline_rows(points)), "", f"Study: {STUDY_ROOFLINE}", ""])


def roofline_sections(entries: list[dict]) -> list[Section]:
    """The HTML section (none without points): the roof, the table and the study's finding (the figure is among
    the page's figures)."""
    points = _points(entries)
    if not points:
        return []
    return [Section("Roofline (Fig. 5)", [Text(f"Roof: {_machine_line(points[0]['machine'])}"),
                                          Table(*roofline_rows(points), caption="Arithmetic intensity: FLOPs of one "
                                                "inference per byte of parameters; figure fig5-roofline.png"),
                                          Text(f"Study: {STUDY_ROOFLINE}")])]


def plot_roofline(entries: list[dict], path: Path) -> Path | None:
    """Fig. 5's form on log-log axes: the roof, the ridge point, and a point per workload (intensity, attained
    FLOP/s) colored by its classification here; None when no workload has a point with work counted."""
    points = [p for p in _points(entries) if p["flops"] > 0]
    if not points:
        return None
    machine = points[0]["machine"]
    peak, bandwidth, ridge = machine["peak_flops_per_s"], machine["bandwidth_bytes_per_s"], machine["ridge_flops_per_byte"]
    xs = [p["intensity_flops_per_byte"] for p in points]
    lo, hi = min(*xs, ridge) / 10, max(*xs, ridge) * 10
    grid = [lo * (hi / lo) ** (i / 200) for i in range(201)]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(10, 5))
    ax.plot(grid, [roof(x, peak, bandwidth) for x in grid], color="black", label="roof: min(peak, intensity × bandwidth)")
    ax.axvline(ridge, color="gray", linestyle=":", label=f"ridge point {ridge:.2f} FLOP/B")
    for p in points:
        ax.scatter(p["intensity_flops_per_byte"], p["attained_flops_per_s"], s=40, color=BOUND_COLORS[p["bound"]],
                   zorder=3)
        ax.annotate(p["workload"], (p["intensity_flops_per_byte"], p["attained_flops_per_s"]), fontsize=7,
                    xytext=(4, 4), textcoords="offset points")
    for name, color in BOUND_COLORS.items():
        ax.scatter([], [], color=color, label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOPs per byte of parameters)")
    ax.set_ylabel("FLOP/s")
    ax.set_title(f"Roofline (Fig. 5 form): {_machine_line(machine)}", fontsize=8)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    return save(fig, path)
