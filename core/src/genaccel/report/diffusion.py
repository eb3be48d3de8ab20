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
    "breakdown": "Fig. 7: baseline Attention takes 41.3% of TTI/TTV time on average, GroupNorm 4-11% and Convolution up "
                 "to 36% in diffusion models; after Flash Attention, Attention takes 13-25% of a diffusion model's time",
    "memory": "Section V-B: a similarity matrix takes 2·H_L·W_L·(H_L·W_L + text_encode) bytes (FP16, batch 1, one "
              "head) at stage 0, H_L·W_L divided by d^2n at stage n: memory grows as O(L^4) in the latent side L",
}
MIB = 2**20


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
    tables += _breakdown_table(entry)
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
    tables += _memory_table(entry)
    return {"title": f"{entry['workload']} ({entry['preset'] or checkpoint}, {entry['steps']} steps)", "facts": facts,
            "tables": tables}


def _breakdown_table(entry: dict) -> list[tuple]:
    """Fig. 7's bars as a table: each category's time over the baseline's inference time (none without them)."""
    fig7 = entry.get("fig7")
    if not fig7:
        return []
    bars = fig7["bars"]
    rows = [[c, f"{bars['eager'][c]:.3f}", f"{bars['sdpa'][c]:.3f}"] for c in fig7["categories"]
            if bars["eager"][c] or bars["sdpa"][c]]
    rows.append(["total", f"{sum(bars['eager'].values()):.3f}", f"{sum(bars['sdpa'].values()):.3f}"])
    caption = (f"Operator breakdown over the baseline's {fig7['baseline_s']:.3f} s inference (Fig. 7; Attention is the "
               "attention modules less their projections, which are Linear; Resample the up- and down-samplers)")
    return [(caption, ["category", "baseline", "sdpa"], rows, STUDY["breakdown"])]


def _memory_table(entry: dict) -> list[tuple]:
    """A denoising step's measured peak memory over image size beside the similarity-matrix model."""
    if not entry.get("memory"):
        return []
    rows = [[str(r["image_size"]), "×".join(map(str, r["latent_shape"][2:])), f"{r['eager_peak_bytes'] / MIB:.3f}",
             f"{r['sdpa_peak_bytes'] / MIB:.3f}", f"{(r['eager_peak_bytes'] - r['sdpa_peak_bytes']) / MIB:.3f}",
             f"{r['model_largest_bytes'] / MIB:.3f}", f"{r['model_total_bytes'] / MIB:.3f}"] for r in entry["memory"]]
    header = ["image size", "latent", "eager peak (MiB)", "sdpa peak (MiB)", "eager − sdpa (MiB)",
              "model: largest matrix (MiB)", "model: Σ matrices (MiB)"]
    return [("Peak memory of a denoising step over image size beside the similarity-matrix model (Section V-B)",
             header, rows, STUDY["memory"])]
