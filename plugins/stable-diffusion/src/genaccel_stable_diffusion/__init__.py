"""genaccel plugin: Stable Diffusion 1.5 text-to-image (``stable-diffusion/t-i``).

Registration only; the model code (torch, diffusers, transformers) loads on first build.
"""

from __future__ import annotations

from genaccel.hookspecs import hookimpl
from genaccel.registry import Option, WorkloadSpec
from genaccel.roles import AttentionSwitch, Compilable, CUDAGraphable, Denoiser, PromptInput

ROLES = (Denoiser, PromptInput, AttentionSwitch, Compilable, CUDAGraphable)
# guidance decoders and diffusers' pipeline (the reference); the diffusion optimizations, quantization
EXTRA = ("cfg", "diffusers-pipeline", "channels-last", "fused-qkv", "step-cache", "quantize")
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


@hookimpl
def genaccel_register_workloads(register):
    spec = WorkloadSpec(**FIELDS, build="genaccel_stable_diffusion.workload:build", roles=ROLES, capabilities=EXTRA,
                        unit="image", options=(Option("image_size", int, help=IMAGE_SIZE_HELP, min=8),))
    register(spec)
