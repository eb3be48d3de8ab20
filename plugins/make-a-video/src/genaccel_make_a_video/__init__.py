"""genaccel plugin: text-to-video latent diffusion (``make-a-video/t-v``), a UNet3D with spatial and
temporal convolutions and attention, as Make-A-Video and ModelScope's text-to-video.

Registration only; the model code (torch, diffusers, transformers) loads on first build.
"""

from __future__ import annotations

from genaccel.hookspecs import hookimpl
from genaccel.registry import Option, WorkloadSpec
from genaccel.roles import AttentionSwitch, Compilable, CUDAGraphable, Denoiser, PromptInput

ROLES = (Denoiser, PromptInput, AttentionSwitch, Compilable, CUDAGraphable)
# guidance decoders and diffusers' pipeline (the reference); the diffusion optimizations, quantization
EXTRA = ("cfg", "diffusers-pipeline", "channels-last", "fused-qkv", "step-cache", "quantize")
HELP = {
    # equal to stable-diffusion's: options of one name are equal across specs
    "image_size": "height and width of the images (video frames) in pixels, a multiple of 8 "
                  "(default: the preset's or checkpoint's)",
    "frames": "frames per video (default: the preset's; 16 for checkpoints)",
}
FIELDS = dict(
    name="make-a-video/t-v",
    description="text-to-video latent diffusion (CLIP text encoder, UNet3D with temporal layers, VAE per frame): "
                "a prompt in, an animated GIF and its frames out",
    presets=("tiny", "small", "1.7b"),
    default_preset="small",
    default_decoder="cfg",
)


@hookimpl
def genaccel_register_workloads(register):
    spec = WorkloadSpec(**FIELDS, build="genaccel_make_a_video.workload:build", roles=ROLES, capabilities=EXTRA,
                        unit="frame", options=(Option("image_size", int, help=HELP["image_size"], min=8),
                                               Option("frames", int, help=HELP["frames"], min=1)))
    register(spec)
