"""genaccel plugin: Phenaki text-to-video (``phenaki/t-v``), the architecture of Villegas et al. 2022 with random
weights: a C-ViViT video tokenizer (a spatial then a causal temporal transformer over space-time patches, factorized
VQ codes), a bidirectional MaskGIT transformer over the video tokens with cross-attention to T5 text embeddings,
filled in by the core's parallel decoding (cosine masking schedule, confidence re-masking, classifier-free
guidance).

Registration only; the model code (``cvivit``, ``maskgit``, ``config``, ``presets``, ``build``, ``checkpoint``,
``workload``: torch, transformers) loads on first build.
"""

from __future__ import annotations

from genaccel.api import FRAMES, MASKED_TOKEN_ROLES, AttentionRecord, WorkloadSpec, workload_hook

from .presets import PRESETS

genaccel_register_workloads = workload_hook(WorkloadSpec(
    name="phenaki/t-v", build="genaccel_phenaki.build:build", presets=tuple(PRESETS), default_preset="small",
    description="masked video-token transformer (T5 text embeddings, MaskGIT over C-ViViT tokens, C-ViViT "
                "decoder) decoding all tokens in parallel over a cosine masking schedule: a prompt in, an "
                "animated GIF and its frames out",
    default_decoder="cfg", unit="frame", options=(FRAMES,),
    roles=(*MASKED_TOKEN_ROLES, AttentionRecord)))
