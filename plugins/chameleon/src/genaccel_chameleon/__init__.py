"""genaccel plugin: Chameleon captioning, visual question answering and image generation.

Workloads ``chameleon/i-t``, ``chameleon/it-t`` and ``chameleon/t-i``; decoders ``cfg`` and
``cfg-sequential`` (contrastive guidance for images).
"""

from __future__ import annotations

from genaccel import DecoderSpec, WorkloadSpec, hookimpl

from .cfg import CFG, SequentialCFG
from .workload import PRESETS, build_for, capabilities

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
            presets=tuple(PRESETS), default_preset="small", default_decoder=decoder, capabilities=capabilities(task),
            options=OPTIONS,
        ))


@hookimpl
def genaccel_register_decoders(register):
    register(DecoderSpec(name="cfg", factory=CFG, requires=("autoregressive", "cfg"),
                         description="contrastive guidance: conditional and unconditional streams in one forward (2B)"))
    register(DecoderSpec(name="cfg-sequential", factory=SequentialCFG, requires=("autoregressive", "cfg"),
                         description="contrastive guidance with a second, sequential forward per step (baseline)"))
