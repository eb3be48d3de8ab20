"""genaccel plugin: Chameleon captioning, visual question answering and image generation.

Workloads ``chameleon/i-t``, ``chameleon/it-t`` and ``chameleon/t-i`` (t-i decodes with the core's
contrastive-guidance decoders ``cfg`` and ``cfg-sequential``).
"""

from __future__ import annotations

from genaccel import WorkloadSpec, hookimpl
from genaccel.roles import (
    AttentionSwitch,
    Compilable,
    CUDAGraphable,
    EarlyExit,
    KVCacheSwitch,
    MediaCodec,
    PromptInput,
    TeacherForcing,
    TokenModel,
    WeightStreaming,
)

from .workload import PRESETS, build_for

ROLES = (TokenModel, MediaCodec, PromptInput, TeacherForcing, WeightStreaming, AttentionSwitch, KVCacheSwitch,
         Compilable, CUDAGraphable)
EXTRA = {"i-t": (EarlyExit,), "it-t": (EarlyExit,), "t-i": ()}  # text out: early exits train on text
CAPABILITIES = {"i-t": ("hf-generate", "beam", "quantize"), "it-t": ("hf-generate", "beam", "quantize"),
                "t-i": ("cfg", "quantize")}

DESCRIPTIONS = {
    "i-t": ("image captioning: an image (1024 tokens) and an instruction in, 30 text tokens out", "top-p"),
    "it-t": ("visual question answering: an image and a question in, 10 text tokens out", "top-p"),
    "t-i": ("image generation: a prompt in, 1024 image tokens out with contrastive guidance, a PNG", "cfg"),
}
OPTIONS = {
    "image_tokenizer": "the release's VQGAN (folder with vqgan.yaml and vqgan.ckpt, or the .ckpt)",
    "image": "the image of `genaccel generate` for i-t and it-t",
    "guidance_scale": "contrastive guidance scale of t-i (default 3.0)",
}


@hookimpl
def genaccel_register_workloads(register):
    for task, (description, decoder) in DESCRIPTIONS.items():
        register(WorkloadSpec(
            name=f"chameleon/{task}", description=f"Chameleon {description}", build=build_for(task),
            presets=tuple(PRESETS), default_preset="small", default_decoder=decoder, roles=(*ROLES, *EXTRA[task]),
            capabilities=CAPABILITIES[task],
            options=OPTIONS,
        ))

