"""The HTML pages of the commands that write other reports than ``report.json``: ``profile`` (profile.html),
``characterize`` (characterize.html), ``characterize-study`` (characterization.html), the
LayerSkip sweep (sweep.html) and ``ablate --tp`` scaling (scaling.html).  Each reads the JSON its command
writes and is written beside it."""

from __future__ import annotations

from pathlib import Path

from .characterization import (
    breakdown_figure,
    breakdown_rows,
    characterize_rows,
    latency_distribution_figure,
    work_rows,
)
from .diffusion import section_parts
from .html import Media, MediaGrid, Page, Section, Table, Text, write_page
from .html_report import figure, summary_table
from .media import data_uri
from .roofline import roofline_sections
from .study_plots import frame_sweep_figure, image_sweep_figure, layerskip_heatmap, scaling_figure, sequence_figure
from .tables import environment_facts


def _page(title: str, doc: dict, summary: list, sections: list[Section]) -> Page:
    return Page(title=title, environment=environment_facts(doc.get("environment") or {}), summary=summary,
                sections=sections)


def write_profile_html(doc: dict, path: Path) -> Path:
    """``profile.json``: the operator breakdown per phase (Fig. 4 form) and the work per phase."""
    profiles = doc["profiles"]
    notes = [Text(f"{p['workload']} {p['label']}: {p['method']}") for p in profiles if p.get("method") != "measured"]
    return write_page(_page("genaccel profile", doc, [Table(*breakdown_rows(profiles), caption="Share of each phase's "
                                                                                              "wall time by category (%)"), *notes],
                            [Section("Where the time goes", [figure(breakdown_figure(profiles))]),
                             Section("Work per phase (FLOPs counted in eager mode)", [Table(*work_rows(profiles))])]), path)


def write_characterize_html(doc: dict, path: Path) -> Path:
    """``characterize.json``: Table II's lengths (summary) and each workload's latency distribution (Fig. 3 form)."""
    cases = doc.get("cases") or []
    return write_page(_page("genaccel characterization", doc, [Table(*characterize_rows(doc["table"]),
                                                                      caption="Lengths and latency (Table II form)")],
                            [Section("Latency distribution (Fig. 3 form)",
                                     [f for f in (figure(latency_distribution_figure(cases)) if cases else None,
                                                  summary_table(cases)) if f])]), path)


def _diffusion_sections(entries: list[dict], checkpoint=None) -> tuple[Table, list[Section]]:
    """Per diffusion workload its sequence lengths (curve, histogram), Attention and Conv time and the
    sweeps, each beside the study's figure; and the summary table over them."""
    sections, summary = [], []
    for entry in entries:
        parts = section_parts(entry, checkpoint)
        blocks: list = [Text(line) for line in parts["facts"]]
        for caption, header, rows, note in parts["tables"]:
            blocks += [Table(header, rows, caption=caption)] + ([Text(f"Study: {note}")] if note else [])
        blocks += [f for f in (figure(sequence_figure(entry)), figure(image_sweep_figure(entry)),
                               figure(frame_sweep_figure(entry))) if f]
        sections.append(Section(parts["title"], blocks))
        s = entry["eager"]["summary"]
        summary.append([entry["workload"], f"{s['seq_len_ratio']:.1f}×", f"{entry['eager']['attention_share']:.0%}",
                        f"{entry['sdpa']['conv_share']:.0%}", f"{s.get('temporal_over_spatial_seconds') or 0:.2f}×"
                        if "temporal" in s["kinds"] else "–"])
    head = Table(["workload", "max/min sequence length (study: up to 4×)", "Attention share (eager)",
                  "Conv share (sdpa; study: up to 44%)", "temporal / spatial time (study: 2×)"], summary,
                 caption="Diffusion beside the study (Golden et al. 2024)")
    return head, sections


def write_study_html(doc: dict, path: Path, checkpoint=None) -> Path:
    """``characterization.json``: the study's figures (Figs. 8-9, and 5, 7, 10, 12, 14 and the memory sweep
    where drawn; the PNGs written beside it, inline), the roofline table and each diffusion workload's section (its
    tables: the operator breakdown, the sweeps, peak memory beside the similarity-matrix model)."""
    out = Path(path).parent
    figures = [Media("img", data_uri(out / name), caption=f"{key}: {name}") for key, name in doc["figures"].items()]
    diffusion = [e["diffusion"] for e in doc["workloads"] if e.get("diffusion")]
    head, sections = _diffusion_sections(diffusion, checkpoint) if diffusion else (None, [])
    sections[:0] = roofline_sections(doc["workloads"])
    lengths = Section("Figures: attention sequence lengths (Figs. 8-9), the roofline (Fig. 5) and, for diffusion, "
                      "Figs. 7-14 and memory",
                      [Text(f"Study: {doc['study']['lengths']}"), MediaGrid(["figure"], [(m.caption, [m]) for m in figures])])
    return write_page(_page("genaccel characterization", doc, [head] if head else [], [lengths, *sections]), path)


def write_sweep_html(doc: dict, path: Path) -> Path:
    """``sweep.json``: LayerSkip's (exit layer, draft length) pairs against plain greedy, as a table and a heatmap."""
    tokens, best = doc["tokens"], doc["best"]
    rows = [[str(r["exit_layer"]), str(r["draft_len"]), f"{r['acceptance_rate']:.3f}", f"{r['tokens_per_cycle']:.2f}",
             f"{tokens / r['seconds']:.1f}", f"{r['speedup']:.2f}×", "yes" if r["same_tokens"] else "NO"]
            for r in doc["pairs"]]
    summary = [Text(f"plain greedy: {tokens / doc['greedy_s']:.1f} tok/s; best: exit layer {best['exit_layer']}, "
                    f"draft length {best['draft_len']} ({best['speedup']:.2f}× plain greedy, the reference)", strong=True),
               Table(["E", "k", "acceptance", "tokens/cycle", "tok/s", "× greedy", "same tokens"], rows)]
    return write_page(_page("genaccel LayerSkip sweep", doc, summary,
                            [Section("Speedup over plain greedy by exit layer and draft length",
                                     [f for f in (figure(layerskip_heatmap(doc)),) if f])]), path)


def write_scaling_html(doc: dict, path: Path) -> Path:
    """``scaling.json``: each stack's tokens/s and parallel efficiency over the tensor-parallel sizes."""
    rows = [[r["label"], str(r["tp"]), "–" if r["tokens_per_s"] is None else f"{r['tokens_per_s']:.2f}",
             "–" if r["efficiency"] is None else f"{r['efficiency']:.2f}"] for r in doc["rows"]]
    summary = [Table(["stack", "ranks", "tok/s", "efficiency"], rows,
                     caption=f"Tensor-parallel scaling over {', '.join(map(str, doc['sizes']))} ranks "
                             f"(efficiency: speedup over {doc['sizes'][0]} rank(s) divided by the size ratio)")]
    return write_page(_page("genaccel tensor-parallel scaling", doc, summary,
                            [Section("Scaling", [f for f in (figure(scaling_figure(doc)),) if f])]), path)
