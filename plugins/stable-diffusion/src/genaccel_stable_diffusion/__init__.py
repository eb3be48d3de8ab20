"""genaccel plugin: Stable Diffusion text-to-image (``stable-diffusion/t-i``): SD 1.5 and SDXL presets,
SD 1.x/2.x and SDXL pipeline folders.

Registration only; the model code (torch, diffusers, transformers) loads on first build.
"""

from __future__ import annotations

from genaccel.api import IMAGE_SIZE, LATENT_DIFFUSION_ROLES, WorkloadSpec, workload_hook

from .presets import PRESETS

genaccel_register_workloads = workload_hook(WorkloadSpec(
    name="stable-diffusion/t-i",
    description="Stable Diffusion latent diffusion (CLIP text encoder(s), UNet, VAE; SD 1.5 and SDXL presets, "
                "SD 1.x/2.x and SDXL folders): a prompt in, a PNG out",
    build="genaccel_stable_diffusion.workload:build", presets=tuple(PRESETS), default_preset="small",
    default_decoder="cfg", roles=LATENT_DIFFUSION_ROLES, unit="image", options=(IMAGE_SIZE,)))
