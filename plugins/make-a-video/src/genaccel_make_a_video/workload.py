"""Text-to-video latent diffusion: a CLIP text encoder, a UNet3DConditionModel (spatial and temporal
convolutions and attention) and an AutoencoderKL decoding frame by frame, built from configs
(presets, random weights) or loaded from a diffusers folder (ModelScope's text-to-video layout)."""

from __future__ import annotations

from pathlib import Path

import torch
from genaccel.api import (
    GenaccelError,
    LatentDiffusion,
    build_parts,
    load_pipeline_folder,
    positive_option,
    save_videos,
    scheduler_name,
)

from .presets import PRESETS, SCHEDULER


class TextToVideo(LatentDiffusion):
    """Text → a video of ``frames`` frames per prompt (``make-a-video/t-v``)."""

    def __init__(self, *, image_size: int, frames: int, **parts):
        super().__init__(**parts)
        self.image_size, self.frames = image_size, frames
        self.vae_scale = 2 ** (len(self.vae.config.block_out_channels) - 1)
        if image_size % self.vae_scale:
            raise GenaccelError(f"--image-size must be a multiple of {self.vae_scale}, got {image_size}")

    @property
    def units_per_sample(self) -> int:
        return self.frames

    def latent_shape(self, batch_size: int) -> tuple:
        side = self.image_size // self.vae_scale
        return (batch_size, self.unet.config.in_channels, self.frames, side, side)

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Videos (B, F, H, W, 3) in [0, 1], float32 on the CPU; the VAE decodes every frame."""
        b, c, f, h, w = latents.shape
        flat = (latents / self.vae.config.scaling_factor).permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)
        frames = self.vae_decode(flat)
        video = frames.reshape(b, f, *frames.shape[1:])
        return (video / 2 + 0.5).clamp(0, 1).permute(0, 1, 3, 4, 2).float().cpu()

    def save_outputs(self, batch, videos, out_dir) -> list[dict]:
        return save_videos(batch, videos, out_dir)


def build(options) -> TextToVideo:
    from diffusers import UNet3DConditionModel

    dtype, device = options.torch_dtype, options.device
    given = options.options
    if options.checkpoint is not None:
        parts = load_pipeline_folder(options.checkpoint, UNet3DConditionModel, device=device, dtype=dtype)
        scheduler_config = parts.pop("scheduler_config")
        vae_scale = 2 ** (len(parts["vae"].config.block_out_channels) - 1)
        size_default, frames_default = parts["unet"].config.sample_size * vae_scale, 16
        defaults = {"scheduler": scheduler_name(scheduler_config, "ddim"), "num_inference_steps": 50,
                    "guidance_scale": 9.0}
        name, random_weights = f"make-a-video ({Path(options.checkpoint).name})", False
    else:
        preset = options.preset_in(PRESETS, "make-a-video/t-v")
        p = PRESETS[preset]
        size_default, frames_default = p["image_size"], p["frames"]
        parts = build_parts(p, device=device, dtype=dtype, seed=options.seed, unet_class=UNet3DConditionModel)
        scheduler_config = SCHEDULER
        defaults = {"scheduler": "ddim", "num_inference_steps": p["steps"], "guidance_scale": 9.0}
        name, random_weights = f"make-a-video {preset}", True
    size = positive_option(given.get("image_size"), size_default, "--image-size", 8)
    frames = positive_option(given.get("frames"), frames_default, "--frames")
    return TextToVideo(**parts, image_size=size, frames=frames, scheduler_config=scheduler_config,
                       denoise_defaults=defaults, device=device, dtype=dtype, random_weights=random_weights, name=name,
                       data=options.data)
