"""A report rendered to Markdown and PNG plots beside its ``report.json``."""

from __future__ import annotations

from pathlib import Path

from ..plugin.specs import REFERENCE_DECODERS
from .plots import plot_latency, plot_speedups, plot_sweep
from .results import upgrade
from .store import cases_of
from .study import STUDY_SDPA_NOTE, sdpa_speedup_rows
from .tables import (
    CASE_HEADER,
    case_details,
    case_row,
    contended,
    environment_md,
    group_cases,
    per_s,
    phase_table,
    speedup_rows,
    sweep_rows,
    table,
    throughput_of,
)


def render(doc: dict, out_dir: Path) -> Path:
    """Write report.md and PNG plots next to report.json; returns the Markdown path."""
    out_dir = Path(out_dir)
    doc = upgrade(doc)
    cases = cases_of(doc)
    lines = [f"# genaccel {doc.get('kind', 'run')} report", "", environment_md(doc.get("environment", {}))]
    invalid = [c for c in cases if contended(c)]
    if invalid:
        lines += [f"**{len(invalid)} of {len(cases)} cases were measured while other processes competed for their "
                  "cores and are marked INVALID**; no headline ratio is drawn from them.", ""]
    lines += _sweeps(cases, out_dir)
    for i, (key, group) in enumerate(group_cases(cases).items()):
        lines += _group_section(i, key, group, out_dir)
    table2 = sdpa_speedup_rows(cases)
    if table2:
        lines += ["## End-to-end SDPA speedup (the study's Table II form)", "",
                  table(["workload", "model", "batch", "device", "sdpa / baseline", "study (Flash Attention)"],
                        table2), "", STUDY_SDPA_NOTE, ""]
    md = out_dir / "report.md"
    md.write_text("\n".join(lines))
    return md


def _sweeps(cases: list[dict], out_dir: Path) -> list[str]:
    """A section per sequence-length sweep (a workload's cases at two or more lengths), with its plot."""
    sweeps: dict[tuple, list[dict]] = {}
    for c in cases:
        if c.get("seq_len"):
            sweeps.setdefault((c["workload"], c.get("preset"), c["batch_size"], c["device"], c["dtype"]), []).append(c)
    lines = []
    for j, (key, group) in enumerate(sweeps.items()):
        rows = sweep_rows(group)
        if len({r[0] for r in rows}) < 2:
            continue
        title = f"{key[0]} · {key[1]} · batch {key[2]} · {key[3]} {key[4]}: sequence-length sweep"
        lines += [f"## {title}", "", table(["seq len", "stack", "latency (s)", "speedup", "peak mem increase (MiB)",
                                            "memory ratio"], rows), ""]
        png = plot_sweep(group, out_dir / f"sweep-{j:02d}-{key[0].replace('/', '-')}-bs{key[2]}.png", title)
        if png:
            lines += [f"![sweep]({png.name})", ""]
    return lines


def _group_section(i: int, key: tuple, group: list[dict], out_dir: Path) -> list[str]:
    """A workload's cases at one model, batch, device, dtype and length: table, phases, speedups, the
    headline against its reference, plots and each case's details."""
    workload, model, bs, device, dtype, seq_len = key
    title = " · ".join(str(p) for p in (workload, model, bs and f"batch {bs}", device and f"{device} {dtype}",
                                        seq_len and f"{seq_len} tokens") if p)  # a case not run lacks some
    lines = [f"## {title}", "", table(CASE_HEADER, [case_row(c) for c in group]), ""]
    phases = phase_table(group)
    if phases:
        lines += ["Time by phase:", "", phases, ""]
    rows = speedup_rows(group)
    if len(rows) > 1:
        lines += [table(["stack", per_s(group[0]), "× baseline", "× previous step"], rows), ""]
        lines += _headlines(group)
    stem = f"{i:02d}-{workload.replace('/', '-')}-bs{bs}" + (f"-n{seq_len}" if seq_len else "")
    for kind, fn in (("speedup", plot_speedups), ("latency", plot_latency)):
        png = fn(group, out_dir / f"{stem}-{kind}.png", title)
        if png:
            lines += [f"![{kind}]({png.name})", ""]
    details = [f"- **{c['label']}**\n{case_details(c)}" for c in group if case_details(c)]
    return lines + (["Details:", "", *details, ""] if details else [])


def _headlines(group: list[dict]) -> list[str]:
    """The best stack against each reference engine in the group, unless either was contended."""
    lines = []
    best = max((c for c in group if c.get("status") == "ok" and c.get("decoder") not in REFERENCE_DECODERS),
               key=lambda c: throughput_of(c) or 0, default=None)
    for ref_decoder, engine in (("hf-generate", "transformers' generate"), ("diffusers-pipeline", "diffusers' pipeline"),
                                ("llama-cpp", "llama.cpp")):
        ref = next((c for c in group if c.get("decoder") == ref_decoder and c.get("status") == "ok"), None)
        invalid = [c["label"] for c in (ref, best) if c and contended(c)]
        if ref and invalid:  # a ratio from a contended case is no figure to headline
            lines += [f"No headline ratio against {engine}: " + ", ".join(f"`{x}`" for x in invalid)
                      + " was measured under contention (INVALID).", ""]
        elif ref and best and throughput_of(ref) and throughput_of(best):
            ratio = throughput_of(best) / throughput_of(ref)
            lines += [f"Best stack `{best['label']}` vs {engine} on the same weights: "
                      f"**{ratio:.2f}×** {per_s(best)}.", ""]
    return lines
