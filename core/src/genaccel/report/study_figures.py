"""``genaccel characterize-study``'s figures and Markdown: Figs. 8 and 9 and the roofline (Fig. 5) for every
workload, Figs. 7, 10, 12 and 14 and the memory sweep for the latent diffusion ones, each a PNG beside the report,
and the tables beside the study's findings."""

from __future__ import annotations

from pathlib import Path

from .attention import STUDY_LENGTHS, lengths_markdown, plot_length_histograms, plot_sequence_lengths
from .diffusion import STUDY, diffusion_markdown
from .diffusion_plots import (
    plot_conv_attention,
    plot_frame_sweep,
    plot_memory,
    plot_operator_breakdown,
    plot_temporal_spatial,
)
from .roofline import STUDY_ROOFLINE, plot_roofline, roofline_markdown

FIGURES = {"fig8": "fig8-sequence-lengths.png", "fig9": "fig9-length-histograms.png", "fig7": "fig7-breakdown.png",
           "fig10": "fig10-conv-attention.png", "fig12": "fig12-temporal-spatial.png", "fig14": "fig14-frames.png",
           "memory": "fig-memory.png", "fig5": "fig5-roofline.png"}
STUDY_FINDINGS = {**STUDY, "lengths": STUDY_LENGTHS, "roofline": STUDY_ROOFLINE}


def study_figures(entries: list[dict], out: Path) -> dict[str, str]:
    """Write the figures the entries have data for into ``out``; their file names by figure."""
    fig9 = {e["workload"]: e["records"][1:] or e["records"] for e in entries}  # the image sizes, else its own
    written = {"fig8": plot_sequence_lengths([e["records"][0] for e in entries], out / FIGURES["fig8"]),
               "fig9": plot_length_histograms(fig9, out / FIGURES["fig9"])}
    diffusion = [e["diffusion"] for e in entries if e["diffusion"]]
    for key, plot in (("fig7", plot_operator_breakdown), ("fig10", plot_conv_attention),
                      ("fig12", plot_temporal_spatial), ("fig14", plot_frame_sweep), ("memory", plot_memory)):
        written[key] = plot(diffusion, out / FIGURES[key]) if diffusion else None
    written["fig5"] = plot_roofline(entries, out / FIGURES["fig5"])
    return {key: path.name for key, path in written.items() if path is not None}


def study_markdown(doc: dict, checkpoint=None) -> str:
    """The length table and the figures, the roofline, then each diffusion workload's section."""
    md = ["# Characterization (Golden et al. 2024)", "", "## Attention sequence lengths (Figs. 8-9)", "",
          lengths_markdown(doc["workloads"]), "", f"Study: {STUDY_LENGTHS}", ""]
    md += [f"![{key}]({name})" for key, name in doc["figures"].items()] + [""]
    md.append(roofline_markdown(doc["workloads"]))
    diffusion = [e["diffusion"] for e in doc["workloads"] if e["diffusion"]]
    if diffusion:
        md.append(diffusion_markdown(diffusion, checkpoint))
    return "\n".join(md)
