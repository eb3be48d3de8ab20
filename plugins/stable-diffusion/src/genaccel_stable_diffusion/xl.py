"""Stable Diffusion XL: two text encoders (CLIP ViT-L and OpenCLIP bigG with its projection), whose
penultimate hidden states are joined along the width, and the UNet's added conditions: the second
encoder's pooled, projected embedding and the time ids (original size, crop corner, target size).
Follows ``diffusers``' ``StableDiffusionXLPipeline`` without negative prompts, size or crop
arguments, so that its images are the pipeline's on the same folder, seed and scheduler."""

from __future__ import annotations

import torch
from diffusers import StableDiffusionXLPipeline
from genaccel.api import GenaccelError, make_pipeline

from .model import StableDiffusion


class StableDiffusionXL(StableDiffusion):
    """Text → one image per prompt through SDXL's base pipeline (``force_zeros``: the unconditional
    embeddings are zeros, as the released folders' ``force_zeros_for_empty_prompt``)."""

    def __init__(self, *, force_zeros: bool = True, **parts):
        super().__init__(**parts)
        self.force_zeros = force_zeros
        cfg = self.unet.config
        if cfg.addition_embed_type != "text_time":
            raise GenaccelError(f"{self.name}: an SDXL UNet has addition_embed_type 'text_time', "
                                f"this one {cfg.addition_embed_type!r}")
        given = cfg.addition_time_embed_dim * 6 + self.text_encoder_2.config.projection_dim
        if given != self.unet.add_embedding.linear_1.in_features:
            raise GenaccelError(f"{self.name}: the UNet's added embedding takes {self.unet.add_embedding.linear_1.in_features}"
                                f" features, the time ids and text_encoder_2's projection give {given}")

    def time_ids(self, batch_size: int) -> torch.Tensor:
        """Original size, crop top-left and target size: the image's size, no crop."""
        side = self.image_size
        return torch.tensor([[side, side, 0, 0, side, side]], dtype=self.dtype, device=self.device).repeat(batch_size, 1)

    def encode_prompt(self, prompts: list[str]) -> tuple:
        """(both encoders' penultimate hidden states joined, the second's pooled embedding, time ids)."""
        hidden, pooled = [], None
        for tokenizer, encoder in ((self.tokenizer, self.text_encoder), (self.tokenizer_2, self.text_encoder_2)):
            ids = tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                            return_tensors="pt").input_ids.to(self.device)
            out = encoder(ids, output_hidden_states=True)
            if pooled is None and out[0].dim() == 2:  # the projected encoder's text_embeds
                pooled = out[0]
            hidden.append(out.hidden_states[-2])
        return torch.cat(hidden, dim=-1).to(self.dtype), pooled.to(self.dtype), self.time_ids(len(prompts))

    def encode_negative(self, batch_size: int) -> tuple:
        if not self.force_zeros:
            return super().encode_negative(batch_size)
        width = sum(e.config.hidden_size for e in self.text_encoders)
        hidden = torch.zeros(batch_size, self.tokenizer.model_max_length, width, dtype=self.dtype, device=self.device)
        pooled = torch.zeros(batch_size, self.text_encoder_2.config.projection_dim, dtype=self.dtype, device=self.device)
        return hidden, pooled, self.time_ids(batch_size)

    def unscale_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """As the pipeline: a VAE with latent statistics in its config denormalizes with them."""
        cfg = self.vae.config
        mean, std = getattr(cfg, "latents_mean", None), getattr(cfg, "latents_std", None)
        if mean is None or std is None:
            return super().unscale_latents(latents)
        shape = (1, len(mean), 1, 1)
        mean = torch.tensor(mean).view(shape).to(latents.device, latents.dtype)
        std = torch.tensor(std).view(shape).to(latents.device, latents.dtype)
        return latents * std / cfg.scaling_factor + mean

    def reference_pipeline(self, s):
        return make_pipeline(self, s, StableDiffusionXLPipeline, text_encoder_2=self.text_encoder_2,
                             tokenizer_2=self.tokenizer_2, force_zeros_for_empty_prompt=self.force_zeros,
                             add_watermarker=False)
