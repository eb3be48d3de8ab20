"""Stable Diffusion 1.5's latent diffusion: a CLIP text encoder, a UNet2DConditionModel and an
AutoencoderKL, built from configs (presets, random weights) or loaded from a diffusers folder."""

from __future__ import annotations

from pathlib import Path

import torch
from genaccel.denoise import LatentDiffusion, build_parts, load_pipeline_folder, save_images, scheduler_name
from genaccel.errors import GenaccelError

#: SD 1.5's scheduler config (PNDM with the training betas) and its pipeline's defaults
SCHEDULER = {
    "_class_name": "PNDMScheduler", "num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
    "beta_schedule": "scaled_linear", "skip_prk_steps": True, "set_alpha_to_one": False, "steps_offset": 1,
    "clip_sample": False,
}

_CROSS, _PLAIN = "CrossAttnDownBlock2D", "DownBlock2D"
_UP_CROSS, _UP_PLAIN = "CrossAttnUpBlock2D", "UpBlock2D"

PRESETS = {
    "tiny": {  # tests: seconds
        "text": {"vocab_size": 1000, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                 "num_attention_heads": 4},
        "unet": {"block_out_channels": (32, 64, 64), "layers_per_block": 1, "cross_attention_dim": 32,
                 "attention_head_dim": 8, "norm_num_groups": 8, "down_block_types": (_CROSS, _CROSS, _PLAIN),
                 "up_block_types": (_UP_PLAIN, _UP_CROSS, _UP_CROSS)},
        "vae": {"block_out_channels": (16, 16, 16, 16), "layers_per_block": 1, "norm_num_groups": 8},
        "image_size": 64, "steps": 2,
    },
    "small": {  # the CPU bench: SD 1.5's layout at reduced widths, 256x256
        "text": {"vocab_size": 8192, "hidden_size": 512, "intermediate_size": 2048, "num_hidden_layers": 6,
                 "num_attention_heads": 8},
        "unet": {"block_out_channels": (64, 128, 256, 256), "layers_per_block": 2, "cross_attention_dim": 512,
                 "attention_head_dim": 8, "norm_num_groups": 32},
        "vae": {"block_out_channels": (32, 64, 128, 128), "layers_per_block": 2, "norm_num_groups": 32},
        "image_size": 256, "steps": 20,
    },
    "sd-1.5": {  # the released sizes: UNet 859.5M, CLIP ViT-L/14 text encoder 123M, VAE 83.7M
        "text": {"vocab_size": 49408, "hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                 "num_attention_heads": 12},
        "unet": {"block_out_channels": (320, 640, 1280, 1280), "layers_per_block": 2, "cross_attention_dim": 768,
                 "attention_head_dim": 8, "norm_num_groups": 32},
        "vae": {"block_out_channels": (128, 256, 512, 512), "layers_per_block": 2, "norm_num_groups": 32},
        "image_size": 512, "steps": 50, "meta": True,
    },
}


def image_size_option(value, default: int) -> int:
    if value is None:
        return default
    try:
        size = int(value)
    except (TypeError, ValueError):
        raise GenaccelError(f"--image-size {value!r} is not an integer") from None
    if size < 8 or size % 8:
        raise GenaccelError(f"--image-size must be a positive multiple of 8, got {size}")
    return size


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
        size = image_size_option(given, parts["unet"].config.sample_size * vae_scale)
        defaults = {"scheduler": scheduler_name(scheduler_config, "pndm"), "num_inference_steps": 50,
                    "guidance_scale": 7.5}
        name, random_weights = f"stable-diffusion ({Path(options.checkpoint).name})", False
    else:
        preset = options.preset or "small"
        size = image_size_option(given, PRESETS[preset]["image_size"])
        parts = build_parts(PRESETS[preset], device=device, dtype=dtype, seed=options.seed,
                            unet_class=UNet2DConditionModel)
        scheduler_config = SCHEDULER
        defaults = {"scheduler": "pndm", "num_inference_steps": PRESETS[preset]["steps"], "guidance_scale": 7.5}
        name, random_weights = f"stable-diffusion {preset}", True
    return StableDiffusion(**parts, image_size=size, scheduler_config=scheduler_config, denoise_defaults=defaults,
                           device=device, dtype=dtype, random_weights=random_weights, name=name, data=options.data)
