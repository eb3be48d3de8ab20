"""genaccel plugin: Chameleon captioning, visual question answering and image generation.

Workloads ``chameleon/i-t``, ``chameleon/it-t`` and ``chameleon/t-i``; t-i decodes with the
core's contrastive-guidance decoders ``cfg`` and ``cfg-sequential``.  Registration is light: the
workload's code (torch, transformers) is imported on first build.
"""

from __future__ import annotations

from pathlib import Path

from genaccel.api import (
    ALLOW_MISSING_WEIGHTS,
    MEDIA_TOKEN_ROLES,
    AttentionRecord,
    BeamSearch,
    EarlyExit,
    Option,
    TeacherForcing,
    TokenGuidance,
    TransformersReference,
    WorkloadSpec,
    hookimpl,
)

from .presets import PRESETS

ROLES = (*MEDIA_TOKEN_ROLES, TeacherForcing, AttentionRecord)
TEXT_ROLES = (EarlyExit, TransformersReference, BeamSearch)
TASKS = {  # description, default decoder, the task's own roles, unit
    "i-t": ("image captioning: an image (1024 tokens) and an instruction in, 30 text tokens out", "top-p",
            TEXT_ROLES, "token"),
    "it-t": ("visual question answering: an image and a question in, 10 text tokens out", "top-p",
             TEXT_ROLES, "token"),
    "t-i": ("image generation: a prompt in, 1024 image tokens out with contrastive guidance, a PNG", "cfg",
            (TokenGuidance,), "image"),
}
OPTIONS = (
    Option(name="image_tokenizer", type=Path,
           help="the release's VQGAN (folder with vqgan.yaml and vqgan.ckpt, or the .ckpt)"),
    Option(name="image", type=Path, help="the image of `genaccel generate` for i-t and it-t"),
    ALLOW_MISSING_WEIGHTS,
)


@hookimpl
def genaccel_register_workloads(register):
    for task, (description, decoder, roles, unit) in TASKS.items():
        register(WorkloadSpec(
            name=f"chameleon/{task}", description=f"Chameleon {description}",
            build=f"genaccel_chameleon.workload:build_{task.replace('-', '_')}", presets=tuple(PRESETS),
            default_preset="small", default_decoder=decoder, roles=ROLES + roles, unit=unit, options=OPTIONS,
        ))
