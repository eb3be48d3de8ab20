"""genaccel plugin: Imagen-style pixel-space cascade text-to-image (``imagen/t-i``), built from the
open cascade that follows Imagen's design (DeepFloyd IF's stages and the x4 upscaler).

Registration only; the model code (torch, diffusers, transformers) loads on first build.
"""

from __future__ import annotations

from genaccel.api import (
    AttentionRecord,
    AttentionSwitch,
    ChannelsLast,
    Compilable,
    CUDAGraphable,
    GuidedLoop,
    Option,
    PipelineReference,
    PromptInput,
    Quantizable,
    WorkloadSpec,
    workload_hook,
)

from .presets import PRESETS

ROLES = (GuidedLoop, PipelineReference, PromptInput, Quantizable, AttentionSwitch, ChannelsLast, Compilable,
         CUDAGraphable, AttentionRecord)
OPTIONS = (
    Option("stages", int, min=1, max=3, help="cascade stages run: 1 base, 2 + super-resolution, 3 + x4 upscaler "
                                             "(default: the preset's)"),
    Option("sr_steps", int, min=1, help="super-resolution stage denoising steps (default: the preset's)"),
    Option("upscaler_steps", int, min=1, help="x4 upscaler stage denoising steps (default: the preset's)"),
)


genaccel_register_workloads = workload_hook(WorkloadSpec(
    name="imagen/t-i", build="genaccel_imagen.build:build", presets=tuple(PRESETS), default_preset="small",
    description="pixel-space cascade (T5 encoder, 64x64 base UNet, 64->256 super-resolution UNet, 256->1024 x4 "
                "upscaler): a prompt in, a PNG per stage out",
    default_decoder="cfg", unit="image", roles=ROLES, options=OPTIONS))
