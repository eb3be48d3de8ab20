"""genaccel plugin: Stable Diffusion 1.5 text-to-image (``stable-diffusion/t-i``).

Registration only; the model code (torch, diffusers, transformers) loads on first build.
"""

from __future__ import annotations

from genaccel.hookspecs import hookimpl
from genaccel.registry import WorkloadSpec
from genaccel.roles import AttentionSwitch, Compilable, CUDAGraphable, Denoiser, PromptInput

ROLES = (Denoiser, PromptInput, AttentionSwitch, Compilable, CUDAGraphable)
EXTRA = ("cfg", "channels-last", "fused-qkv")  # guidance decoders; the diffusion optimizations
# the same Option as make-a-video's: options of one name are equal across specs
IMAGE_SIZE_HELP = ("height and width of the images (video frames) in pixels, a multiple of 8 "
                   "(default: the preset's or checkpoint's)")
FIELDS = dict(
    name="stable-diffusion/t-i",
    description="Stable Diffusion 1.5 latent diffusion (CLIP text encoder, UNet, VAE): a prompt in, a PNG out",
    presets=("tiny", "small", "sd-1.5"),
    default_preset="small",
    default_decoder="cfg",
)


def _build(options):
    from .workload import build

    return build(options)


@hookimpl
def genaccel_register_workloads(register):
    try:
        from genaccel.registry import Option

        spec = WorkloadSpec(**FIELDS, build="genaccel_stable_diffusion.workload:build", roles=ROLES, capabilities=EXTRA,
                            unit="image", options=(Option("image_size", int, help=IMAGE_SIZE_HELP, min=8),))
    except (ImportError, TypeError):  # MERGE: registry without Option, roles and import strings; delete then
        caps = {r.capability for r in ROLES} | set(EXTRA)
        spec = WorkloadSpec(**FIELDS, build=_build, capabilities=caps, options={
            "image_size": IMAGE_SIZE_HELP, "scheduler": "ddim|pndm|dpm-solver|euler",
            "num_inference_steps": "denoising steps", "guidance_scale": "classifier-free guidance scale"})
    register(spec)
