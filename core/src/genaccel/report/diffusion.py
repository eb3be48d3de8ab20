"""The diffusion characterization as Markdown, beside the study's figures (Golden et al. 2024, Figs. 7-14)."""

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
        md += _section(entry, checkpoint)
    return "\n".join(md)


def _section(entry: dict, checkpoint) -> list[str]:
    w, s, eager, sdpa = entry["workload"], entry["eager"]["summary"], entry["eager"], entry["sdpa"]
    step0 = [r["query_len"] for r in eager["sequence_profile"] if r["step"] == 0 and r["kind"] == "spatial"]
    md = [f"### {w} ({entry['preset'] or checkpoint}, {entry['steps']} steps)", "",
          f"- attention sequence length (spatial self-attention, step 0, in call order): {' '.join(map(str, step0))}",
          f"- max/min sequence length {s['max_seq_len']}/{s['min_seq_len']} = **{s['seq_len_ratio']:.1f}×** "
          f"(study: {STUDY['seq_len_ratio']})"]
    rows = [[a["attention"], f"{a['inference_s']:.3f}", f"{a['attention_s']:.3f}", f"{a['attention_share']:.0%}",
             f"{a['conv_s']:.3f}", f"{a['conv_share']:.0%}"] for a in (eager, sdpa)]
    md += ["", table(["attention", "inference (s)", "Attention (s)", "Attention share", "Conv (s)", "Conv share"],
                     rows), "", f"Study: {STUDY['conv_after_flash']}", ""]
    kinds = s["kinds"]
    if "temporal" in kinds:
        md += [table(["kind", "calls", "seconds", "GFLOPs"],
                     [[k, str(v["calls"]), f"{v['seconds']:.4f}", f"{v['flops'] / 1e9:.3f}"] for k, v in kinds.items()]),
               "", f"- temporal / spatial attention: time **{s['temporal_over_spatial_seconds']:.2f}×**, FLOPs "
               f"**{s['temporal_over_spatial_flops']:.3f}×** (study: {STUDY['temporal']})", ""]
    if entry["image_sweep"]:
        md += ["Conv vs Attention over image size (Fig. 10):", "",
               table(["image size", "eager Attention (s)", "eager Conv (s)", "sdpa Attention (s)", "sdpa Conv (s)",
                      "sdpa Conv share"],
                     [[str(r["image_size"]), f"{r['eager']['attention_s']:.3f}", f"{r['eager']['conv_s']:.3f}",
                       f"{r['sdpa']['attention_s']:.3f}", f"{r['sdpa']['conv_s']:.3f}",
                       f"{r['sdpa']['conv_share']:.0%}"] for r in entry["image_sweep"]]), ""]
    if entry["frame_sweep"]:
        md += ["Temporal vs spatial attention over frame counts (Fig. 14; sdpa):", "",
               table(["frames", "temporal GFLOPs", "spatial GFLOPs", "temporal (s)", "spatial (s)"],
                     [[str(r["frames"]), f"{r['temporal']['flops'] / 1e9:.4f}", f"{r['spatial']['flops'] / 1e9:.4f}",
                       f"{r['temporal']['seconds']:.4f}", f"{r['spatial']['seconds']:.4f}"]
                      for r in entry["frame_sweep"]]), "", f"Study: {STUDY['frames']}", ""]
    return md
