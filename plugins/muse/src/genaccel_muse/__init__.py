"""genaccel plugin: Muse-style masked image-token transformer with parallel decoding (``muse/t-i``), the
open reproduction's architecture in diffusers (aMUSEd: UVit2DModel, CLIP text encoder, VQModel).

Registration only; the model code (torch, diffusers, transformers) loads on first build.
"""

from __future__ import annotations

from genaccel.api import (
    AttentionSwitch,
    Compilable,
    CUDAGraphable,
    GuidedLoop,
    PipelineReference,
    PromptInput,
    Quantizable,
    WorkloadSpec,
    hookimpl,
)

from .presets import PRESETS

ROLES = (GuidedLoop, PipelineReference, PromptInput, Quantizable, AttentionSwitch, Compilable, CUDAGraphable)
FIELDS = dict(
    name="muse/t-i",
    description="masked image-token transformer (CLIP text encoder, UVit2D over VQ tokens, VQ decoder) decoding "
                "all tokens in parallel over a cosine masking schedule: a prompt in, a PNG out",
    presets=tuple(PRESETS),
    default_preset="small",
    default_decoder="cfg",
)


@hookimpl
def genaccel_register_workloads(register):
    register(WorkloadSpec(**FIELDS, build="genaccel_muse.workload:build", roles=ROLES,
                          unit="image"))
