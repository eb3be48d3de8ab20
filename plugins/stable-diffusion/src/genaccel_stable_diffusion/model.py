"""Stable Diffusion 1.x/2.x: one CLIP text encoder, a UNet2DConditionModel and an AutoencoderKL.

SD 2.x differs from 1.x only in what its folder says: an OpenCLIP text encoder saved as a
``CLIPTextModel`` (GELU, its penultimate layer already the last), v-prediction in the scheduler
config (the core's loop keeps it), and a 768×768 UNet sample size.
"""

from __future__ import annotations

import torch
from genaccel.api import GenaccelError, LatentDiffusion, save_images


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
        images = self.vae_decode(self.unscale_latents(latents))
        return (images / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).float().cpu()

    def unscale_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """The latents as the VAE decodes them."""
        return latents / self.vae.config.scaling_factor

    def save_outputs(self, batch, images, out_dir) -> list[dict]:
        return save_images(batch, images, out_dir)
