"""A report rendered to Markdown with PNG plots, and to one self-contained HTML page, beside its ``report.json``."""

from __future__ import annotations

from pathlib import Path

from ..files import write_text
from .characterization import breakdown_markdown, plot_breakdown
from .html_report import write_report_html
from .llamacpp import comparison_markdown
from .plots import plot_latency, plot_speedups, plot_sweep
from .results import upgrade
from .store import cases_of
from .study import STUDY_SDPA_NOTE, sdpa_speedup_rows
from .suite import SUITE_HEADER, SUITE_NOTE, suite_headline, suite_summary, suite_table_rows
from .tables import (
    CASE_HEADER,
    case_details,
    case_row,
    contended,
    environment_md,
    group_cases,
    headlines,
    per_s,
    phase_table,
    speedup_rows,
    sweep_rows,
    table,
)


def render(doc: dict, out_dir: Path) -> Path:
    """Write report.md, PNG plots and report.html next to report.json; returns the Markdown path."""
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
    lines += comparison_markdown(cases)
    suite = suite_summary(cases)
    if suite:
        lines += ["## All together: each workload's best stack (the suite's geometric mean)", "", suite_headline(suite), "",
                  table(SUITE_HEADER, suite_table_rows(suite)), "", SUITE_NOTE, ""]
    if doc.get("profiles"):  # a bench's profiled cases
        plot_breakdown(doc["profiles"], out_dir / "breakdown.png")
        lines += ["## Where the time goes", "", breakdown_markdown(doc["profiles"]), "", "![breakdown](breakdown.png)", ""]
    md = out_dir / "report.md"
    write_text(md, "\n".join(lines))
    write_report_html(doc, out_dir)
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
    for h in headlines(group):
        if h["invalid"]:
            lines += [f"No headline ratio against {h['engine']}: " + ", ".join(f"`{x}`" for x in h["invalid"])
                      + " was measured under contention (INVALID).", ""]
        else:
            lines += [f"Best stack `{h['best']}` vs {h['engine']} on the same weights: **{h['ratio']:.2f}×** {h['per_s']}.", ""]
    return lines
