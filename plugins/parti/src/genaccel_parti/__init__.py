"""genaccel plugin: Parti text-to-image (``parti/t-i``), the architecture of Yu et al. 2022 with random weights
or a saved folder: an encoder-decoder Transformer (transformers' M2M100 layers) that reads at most 128 text
tokens and writes 1024 image tokens one at a time, under classifier-free guidance (the core's ``cfg`` and
``cfg-sequential`` decoders) and top-k sampling, and a ViT-VQGAN that turns the 32x32 tokens into a 256x256 image.

Registration is light: the workload's code (``workload``, ``model``, ``vitvqgan``, ``build``, ``checkpoint``,
``tokenizer``, ``inputs``; torch, transformers) is imported on first build.
"""

from __future__ import annotations

from genaccel.api import (
    ALLOW_MISSING_WEIGHTS,
    MEDIA_TOKEN_ROLES,
    AttentionRecord,
    TokenGuidance,
    TransformersReference,
    WorkloadSpec,
    workload_hook,
)

from .presets import PRESETS

ROLES = (*MEDIA_TOKEN_ROLES, TokenGuidance, TransformersReference, AttentionRecord)


genaccel_register_workloads = workload_hook(WorkloadSpec(
    name="parti/t-i", build="genaccel_parti.workload:build", presets=tuple(PRESETS), default_preset="small",
    description="Parti text-to-image: a prompt in, 1024 image tokens (32x32) out of an encoder-decoder with "
                "classifier-free guidance and top-k sampling, a 256x256 PNG from the ViT-VQGAN",
    default_decoder="cfg", roles=ROLES, unit="image", options=(ALLOW_MISSING_WEIGHTS,),
))
