"""One workload's characterization in the form of Golden et al. 2024 (``genaccel characterize-study``): its
attention-call record (Fig. 8) and the records at each image size it can take (Fig. 9), and for a latent
diffusion workload the Conv and Attention profile, eager and SDPA, over image sizes and frame counts (Figs. 10,
12, 14); and its point on the roofline (Fig. 5)."""

from __future__ import annotations

import sys

from ..plugin.registry import Registry
from ..plugin.role import offers
from ..plugin.roles import Denoiser
from .attention import length_summary, record_workload
from .config import RunConfig
from .diffusion import characterize_workload
from .roofline import roofline_point


def takes_image_size(registry: Registry, workload: str) -> bool:
    """Whether the workload's spec declares the ``image_size`` option (the sizes of Fig. 9 apply to it)."""
    return any(o.name == "image_size" for o in registry.workload(workload).options)


def study_entry(registry: Registry, base: RunConfig, *, steps: int, image_sizes=(), frame_counts=()) -> dict:
    """``{workload, preset, records, diffusion, roofline}``: the records (each with its length summary per kind) at the
    workload's own size, then at each of ``image_sizes`` where it takes the option; ``diffusion``: the Denoiser
    profile (:func:`genaccel.run.diffusion.characterize_workload`) or None; ``roofline``: the point of one
    whole inference on Fig. 5's roofline (:func:`genaccel.run.roofline.roofline_point`)."""
    w = base.workload
    sizes = [None, *(image_sizes if takes_image_size(registry, w) else ())]
    records = []
    for size in sizes:
        print(f"{w}: attention record" + (f" at {size}px" if size else ""), file=sys.stderr, flush=True)
        rec = record_workload(registry, base, image_size=size)
        records.append({**rec, "lengths": length_summary(rec["calls"])})
    diffusion = None
    if offers(registry.workload(w).roles, Denoiser):
        diffusion = characterize_workload(registry, base, steps, image_sizes=image_sizes, frame_counts=frame_counts)
    return {"workload": w, "preset": base.preset, "records": records, "diffusion": diffusion,
            "roofline": roofline_point(registry, base)}
