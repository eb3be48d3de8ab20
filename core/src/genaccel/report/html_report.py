"""``report.html`` of a run, an ablation or a bench (``report.json`` of schema 1 or 2): the summary table of
every case first (sortable), the headline ratios with their reference, the environment folded, then per
workload group its tables, figures (speedups, latency, time by phase, time per step), generated media side
by side and each case's details folded; sequence-length sweeps, the study's Table II beside its values and
a bench's profiles after."""

from __future__ import annotations

from pathlib import Path

from .characterization import breakdown_figure, breakdown_rows
from .html import Cell, Details, Figure, Page, Section, Table, Text, write_page
from .llamacpp import HEADER as LLAMACPP_HEADER
from .llamacpp import NOTE as LLAMACPP_NOTE
from .llamacpp import comparison, comparison_rows
from .media import media_grid
from .plots import latency_figure, phase_figure, speedup_figure, steps_figure, sweep_figure
from .results import upgrade
from .store import cases_of
from .study import STUDY_SDPA_NOTE, sdpa_speedups, speedup_text, study_text
from .study_plots import table2_figure
from .suite import SUITE_HEADER, SUITE_NOTE, suite_headline, suite_summary, suite_table_rows
from .svg import to_svg
from .tables import (
    CASE_HEADER,
    case_details,
    case_row,
    contended,
    environment_facts,
    group_cases,
    headlines,
    per_s,
    phase_rows,
    speedup_rows,
    sweep_rows,
    throughput_of,
    throughput_spread,
)


def write_report_html(doc: dict, out_dir: Path) -> Path:
    """Write ``report.html`` beside the report's other files; returns its path."""
    out_dir = Path(out_dir)
    return write_page(report_page(doc, out_dir), out_dir / "report.html")


def report_page(doc: dict, out_dir: Path) -> Page:
    doc = upgrade(doc)
    cases = cases_of(doc)
    summary: list = [summary_table(cases)]
    invalid = [c for c in cases if contended(c)]
    if invalid:
        summary.append(Text(f"{len(invalid)} of {len(cases)} cases were measured while other processes competed for "
                            "their cores and are marked INVALID; no headline ratio is drawn from them.", strong=True))
    groups = group_cases(cases)
    suite = suite_summary(cases)
    if suite:
        summary.append(Text(suite_headline(suite), strong=True))
    for key, group in groups.items():
        summary += [Text(f"{key[0]}: {line}", strong=True) for line in _headline_lines(group)]
    sections = _sweep_sections(cases)
    sections += [_group_section(key, group, out_dir) for key, group in groups.items()]
    sections += [s for s in (_table2_section(cases), _llamacpp_section(cases), _suite_section(suite),
                             _profiles_section(doc.get("profiles"))) if s]
    return Page(title=f"genaccel {doc.get('kind', 'run')} report", environment=environment_facts(doc.get("environment") or {}),
                summary=summary, sections=sections)


def plain(markdown: str) -> str:
    """Markdown emphasis and code marks taken out (the page escapes and styles text itself)."""
    return markdown.replace("**", "").replace("`", "")


def _num(x, spec: str) -> Cell:
    return Cell("–" if x is None else format(x, spec), sort=x)


def summary_table(cases: list[dict]) -> Table:
    """Every case in one sortable table: where it ran, its status, throughput with its spread, latency, memory."""
    rows = []
    for c in cases:
        s = c.get("summary") or {}
        lat, spread, tps = s.get("latency_s") or {}, throughput_spread(c), throughput_of(c)
        ci = spread.get("ci95")
        status = "INVALID: contended" if contended(c) else c.get("status", "")
        rows.append([
            Cell(c.get("workload") or ""), Cell(c.get("label") or "", title=c.get("error") or None),
            _num(c.get("batch_size"), "d"), Cell(f"{c.get('device') or '–'} {c.get('dtype') or ''}"),
            Cell(status, cls="invalid" if status != "ok" else None, title=c.get("error") or "; ".join(contended(c)) or None),
            Cell("–" if tps is None else f"{tps:.2f}" + (f" ± {spread['sd']:.2f}" if spread.get("sd") is not None else "")
                 + f" {per_s(c)}", sort=tps),
            Cell(f"{ci[0]:.2f}–{ci[1]:.2f} (n={spread['n']})" if ci else "–", sort=ci[0] if ci else None),
            _num(lat.get("p50"), ".4f"), _num(lat.get("p90"), ".4f"), _num((s.get("ttft_s") or {}).get("mean"), ".4f"),
            _num(s.get("peak_memory_bytes") and s["peak_memory_bytes"] / 2**20, ",.0f"),
        ])
    return Table(["workload", "stack", "batch", "device", "status", "throughput (± sd)", "95% interval", "latency p50 (s)",
                  "p90 (s)", "TTFT (s)", "peak MiB"], rows, caption=f"Summary: {len(cases)} cases (click a header to sort)")


def _headline_lines(group: list[dict]) -> list[str]:
    lines = []
    for h in headlines(group):
        if h["invalid"]:
            lines.append(f"no headline ratio against {h['engine']}: {', '.join(h['invalid'])} measured under contention")
        else:
            lines.append(f"best stack {h['best']} vs {h['engine']} (the reference, on the same weights): "
                         f"{h['ratio']:.2f}× {h['per_s']}")
    return lines


def figure(made, caption: str | None = None) -> Figure | None:
    """A plot builder's ``(figure, titles)`` as an inline SVG block, or None when there was nothing to draw."""
    return Figure(svg=to_svg(*made), caption=caption) if made else None


def _group_section(key: tuple, group: list[dict], out_dir: Path) -> Section:
    workload, model, bs, device, dtype, seq_len = key
    title = " · ".join(str(p) for p in (workload, model, bs and f"batch {bs}", device and f"{device} {dtype}",
                                        seq_len and f"{seq_len} tokens") if p)
    blocks: list = [Table(CASE_HEADER, [[plain(x) for x in case_row(c)] for c in group])]
    header, rows = phase_rows(group)
    if rows:
        blocks.append(Table(header, rows, caption="Time by phase"))
    if len(speedup_rows(group)) > 1:
        blocks.append(Table(["stack", per_s(group[0]), "× baseline", "× previous step"], speedup_rows(group),
                            caption="Speedups"))
    blocks += [Text(line, strong=True) for line in _headline_lines(group)]
    blocks += [f for f in (figure(speedup_figure(group, title)), figure(latency_figure(group, title)),
                           figure(phase_figure(group, title)), figure(steps_figure(group, title))) if f]
    grid = media_grid(group, out_dir)
    if grid:
        blocks.append(grid)
    details = [Details(summary=c["label"], blocks=[Text(plain(line.strip().removeprefix("- "))) for line in
                                                    case_details(c).splitlines()]) for c in group if case_details(c)]
    if details:
        blocks.append(Details(summary=f"Details of each case ({len(details)})", blocks=details))
    return Section(title=title, blocks=blocks)


def _sweep_sections(cases: list[dict]) -> list[Section]:
    """A section per sequence-length sweep (a workload's cases at two or more lengths)."""
    sweeps: dict[tuple, list[dict]] = {}
    for c in cases:
        if c.get("seq_len"):
            sweeps.setdefault((c["workload"], c.get("preset"), c["batch_size"], c["device"], c["dtype"]), []).append(c)
    sections = []
    for key, group in sweeps.items():
        rows = sweep_rows(group)
        if len({r[0] for r in rows}) < 2:
            continue
        title = f"{key[0]} · {key[1]} · batch {key[2]} · {key[3]} {key[4]}: sequence-length sweep"
        table = Table(["seq len", "stack", "latency (s)", "speedup", "peak mem increase (MiB)", "memory ratio"], rows)
        sections.append(Section(title=title, blocks=[table, *filter(None, [figure(sweep_figure(group, title))])]))
    return sections


def _table2_section(cases: list[dict]) -> Section | None:
    """The study's Table II (Flash Attention's end-to-end speedup) beside ``sdpa`` over baseline here."""
    found = sdpa_speedups(cases)
    if not found:
        return None
    rows = [[r["workload"], r["model"], str(r["batch_size"]), r["device"], Cell(speedup_text(r), sort=r["speedup"]),
             Cell(study_text(r), sort=r["study_speedup"])]
            for r in found]
    return Section(title="End-to-end SDPA speedup beside the study's Table II", blocks=[
        Table(["workload", "model", "batch", "device", "sdpa / baseline", "study (Flash Attention)"], rows),
        *filter(None, [figure(table2_figure([r for r in found if r["speedup"] is not None]))]), Text(STUDY_SDPA_NOTE)])


def _llamacpp_section(cases: list[dict]) -> Section | None:
    """Each precision pair's prompt processing and token generation, genaccel beside llama.cpp."""
    rows = comparison(cases)
    if not rows:
        return None
    return Section(title="genaccel against llama.cpp",
                   blocks=[Table(LLAMACPP_HEADER, comparison_rows(rows)), Text(LLAMACPP_NOTE)])


def _suite_section(suite: dict | None) -> Section | None:
    """Each group's best lossless stack and best of all over its baseline, and their geometric means."""
    if not suite:
        return None
    return Section(title="All together: each workload's best stack and the suite's geometric mean",
                   blocks=[Table(SUITE_HEADER, suite_table_rows(suite)), Text(SUITE_NOTE)])


def _profiles_section(profiles: list[dict] | None) -> Section | None:
    if not profiles:
        return None
    return Section(title="Where the time goes (profiled cases)",
                   blocks=[figure(breakdown_figure(profiles)), Table(*breakdown_rows(profiles))])
