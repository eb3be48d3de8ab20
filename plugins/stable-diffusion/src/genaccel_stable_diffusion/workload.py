"""Stable Diffusion 1.5's latent diffusion: a CLIP text encoder, a UNet2DConditionModel and an
AutoencoderKL, built from configs (presets, random weights) or loaded from a diffusers folder."""

from __future__ import annotations

from pathlib import Path

import torch
from genaccel.api import (
    GenaccelError,
    LatentDiffusion,
    build_parts,
    load_pipeline_folder,
    positive_option,
    save_images,
    scheduler_name,
)

from .presets import PRESETS, SCHEDULER


class StableDiffusion(LatentDiffusion):
    """Text → one image per prompt (``stable-diffusion/t-i``)."""

    units_per_sample = 1

    def __init__(self, *, image_size: int, **parts):
        super().__init__(**parts)
        self.image_size = image_size
        self.vae_scale = 2 ** (len(self.vae.config.block_out_channels) - 1)
        if image_size % self.vae_scale:
            raise GenaccelError(f"--image-size must be a multiple of {self.vae_scale}, got {image_size}")

    def latent_shape(self, batch_size: int) -> tuple:
        side = self.image_size // self.vae_scale
        return (batch_size, self.unet.config.in_channels, side, side)

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Images (B, H, W, 3) in [0, 1], float32 on the CPU."""
        images = self.vae_decode(latents / self.vae.config.scaling_factor)
        return (images / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).float().cpu()

    def save_outputs(self, batch, images, out_dir) -> list[dict]:
        return save_images(batch, images, out_dir)


def build(options) -> StableDiffusion:
    from diffusers import UNet2DConditionModel

    dtype, device = options.torch_dtype, options.device
    given = options.options.get("image_size")
    if options.checkpoint is not None:
        parts = load_pipeline_folder(options.checkpoint, UNet2DConditionModel, device=device, dtype=dtype)
        scheduler_config = parts.pop("scheduler_config")
        vae_scale = 2 ** (len(parts["vae"].config.block_out_channels) - 1)
        size = positive_option(given, parts["unet"].config.sample_size * vae_scale, "--image-size", 8)
        defaults = {"scheduler": scheduler_name(scheduler_config, "pndm"), "num_inference_steps": 50,
                    "guidance_scale": 7.5}
        name, random_weights = f"stable-diffusion ({Path(options.checkpoint).name})", False
    else:
        preset = options.preset or "small"
        size = positive_option(given, PRESETS[preset]["image_size"], "--image-size", 8)
        parts = build_parts(PRESETS[preset], device=device, dtype=dtype, seed=options.seed,
                            unet_class=UNet2DConditionModel)
        scheduler_config = SCHEDULER
        defaults = {"scheduler": "pndm", "num_inference_steps": PRESETS[preset]["steps"], "guidance_scale": 7.5}
        name, random_weights = f"stable-diffusion {preset}", True
    return StableDiffusion(**parts, image_size=size, scheduler_config=scheduler_config, denoise_defaults=defaults,
                           device=device, dtype=dtype, random_weights=random_weights, name=name, data=options.data)
