"""genaccel plugin: Muse-style masked image-token transformer with parallel decoding (``muse/t-i``), the
open reproduction's architecture in diffusers (aMUSEd: UVit2DModel, CLIP text encoder, VQModel).

Registration only; the model code (torch, diffusers, transformers) loads on first build.
"""

from __future__ import annotations

from genaccel.api import MASKED_TOKEN_ROLES, AttentionRecord, PipelineReference, WorkloadSpec, workload_hook

from .presets import PRESETS

genaccel_register_workloads = workload_hook(WorkloadSpec(
    name="muse/t-i", build="genaccel_muse.workload:build", presets=tuple(PRESETS), default_preset="small",
    description="masked image-token transformer (CLIP text encoder, UVit2D over VQ tokens, VQ decoder) decoding "
                "all tokens in parallel over a cosine masking schedule: a prompt in, a PNG out",
    default_decoder="cfg", unit="image",
    roles=(*MASKED_TOKEN_ROLES, PipelineReference, AttentionRecord)))
