"""The diffusion characterization as tables beside the study's figures (Golden et al. 2024, Figs. 7-14):
one set of parts per workload (:func:`section_parts`), written as Markdown here and as HTML by
:mod:`genaccel.report.html_pages`."""

from __future__ import annotations

from .tables import table

STUDY = {
    "seq_len_ratio": "Figs. 8-9: sequence length varies up to 4x over a Stable Diffusion inference (U-shaped cycle)",
    "conv_after_flash": "Fig. 7/10: after Flash Attention, Convolution takes up to 44% of a diffusion TTI model's time "
                        "and grows faster with image size than Attention",
    "temporal": "Fig. 12: in Make-A-Video, temporal attention takes 2x the time of spatial attention with 9x fewer FLOPs",
    "frames": "Fig. 14: temporal attention FLOPs grow quadratically with the number of frames, spatial linearly",
}


def diffusion_markdown(entries: list[dict], checkpoint=None) -> str:
    """Every diffusion workload's section: sequence lengths, Attention and Conv time with eager attention and
    SDPA, temporal against spatial attention, and the sweeps over image size and frame count."""
    md = ["## Diffusion: Conv and Attention (Figs. 7-14)", ""]
    for entry in entries:
        parts = section_parts(entry, checkpoint)
        md += [f"### {parts['title']}", "", *(f"- {line}" for line in parts["facts"]), ""]
        for caption, header, rows, note in parts["tables"]:
            md += ([f"{caption}:", ""] if caption else []) + [table(header, rows), ""] + ([f"Study: {note}", ""] if note else [])
    return "\n".join(md)


def section_parts(entry: dict, checkpoint=None) -> dict:
    """A workload's ``title``, ``facts`` (lines beside the study's) and ``tables`` (caption, header, rows,
    the study's statement they stand beside)."""
    s, eager, sdpa = entry["eager"]["summary"], entry["eager"], entry["sdpa"]
    step0 = [r["query_len"] for r in eager["sequence_profile"] if r["step"] == 0 and r["kind"] == "spatial"]
    facts = [f"attention sequence length (spatial self-attention, step 0, in call order): {' '.join(map(str, step0))}",
             f"max/min sequence length {s['max_seq_len']}/{s['min_seq_len']} = {s['seq_len_ratio']:.1f}× "
             f"(study: {STUDY['seq_len_ratio']})"]
    tables = [(None, ["attention", "inference (s)", "Attention (s)", "Attention share", "Conv (s)", "Conv share"],
               [[a["attention"], f"{a['inference_s']:.3f}", f"{a['attention_s']:.3f}", f"{a['attention_share']:.0%}",
                 f"{a['conv_s']:.3f}", f"{a['conv_share']:.0%}"] for a in (eager, sdpa)], STUDY["conv_after_flash"])]
    kinds = s["kinds"]
    if "temporal" in kinds:
        facts.append(f"temporal / spatial attention: time {s['temporal_over_spatial_seconds']:.2f}×, FLOPs "
                     f"{s['temporal_over_spatial_flops']:.3f}× (study: {STUDY['temporal']})")
        tables.append(("Attention by kind", ["kind", "calls", "seconds", "GFLOPs"],
                       [[k, str(v["calls"]), f"{v['seconds']:.4f}", f"{v['flops'] / 1e9:.3f}"] for k, v in kinds.items()],
                       None))
    if entry["image_sweep"]:
        tables.append(("Conv vs Attention over image size (Fig. 10)",
                       ["image size", "eager Attention (s)", "eager Conv (s)", "sdpa Attention (s)", "sdpa Conv (s)",
                        "sdpa Conv share"],
                       [[str(r["image_size"]), f"{r['eager']['attention_s']:.3f}", f"{r['eager']['conv_s']:.3f}",
                         f"{r['sdpa']['attention_s']:.3f}", f"{r['sdpa']['conv_s']:.3f}", f"{r['sdpa']['conv_share']:.0%}"]
                        for r in entry["image_sweep"]], None))
    if entry["frame_sweep"]:
        tables.append(("Temporal vs spatial attention over frame counts (Fig. 14; sdpa)",
                       ["frames", "temporal GFLOPs", "spatial GFLOPs", "temporal (s)", "spatial (s)"],
                       [[str(r["frames"]), f"{r['temporal']['flops'] / 1e9:.4f}", f"{r['spatial']['flops'] / 1e9:.4f}",
                         f"{r['temporal']['seconds']:.4f}", f"{r['spatial']['seconds']:.4f}"] for r in entry["frame_sweep"]],
                       STUDY["frames"]))
    return {"title": f"{entry['workload']} ({entry['preset'] or checkpoint}, {entry['steps']} steps)", "facts": facts,
            "tables": tables}
