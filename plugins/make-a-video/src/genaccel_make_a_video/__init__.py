"""genaccel plugin: text-to-video latent diffusion (``make-a-video/t-v``), a UNet3D with spatial and
temporal convolutions and attention, as Make-A-Video and ModelScope's text-to-video.

Registration only; the model code (torch, diffusers, transformers) loads on first build.
"""

from __future__ import annotations

from genaccel.api import FRAMES, IMAGE_SIZE, LATENT_DIFFUSION_ROLES, WorkloadSpec, workload_hook

from .presets import PRESETS

genaccel_register_workloads = workload_hook(WorkloadSpec(
    name="make-a-video/t-v",
    description="text-to-video latent diffusion (CLIP text encoder, UNet3D with temporal layers, VAE per frame): "
                "a prompt in, an animated GIF and its frames out",
    build="genaccel_make_a_video.workload:build", presets=tuple(PRESETS), default_preset="small",
    default_decoder="cfg", roles=LATENT_DIFFUSION_ROLES, unit="frame", options=(IMAGE_SIZE, FRAMES)))
