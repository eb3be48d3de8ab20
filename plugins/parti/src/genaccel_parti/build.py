"""One preset's whole model: the encoder-decoder Transformer, the ViT-VQGAN and the text tokenizer, built together
with one seed (the Transformer's weights from ``seed``, the ViT-VQGAN's from ``seed + 1``)."""

from __future__ import annotations

import attrs
import torch

from .model import PartiForConditionalGeneration, build_transformer
from .presets import Preset
from .tokenizer import text_tokenizer
from .vitvqgan import ViTVQGAN, build_vitvqgan


@attrs.frozen
class PartiParts:
    """A built preset: ``tokenizer`` is None when it was not asked for."""

    preset: Preset
    transformer: PartiForConditionalGeneration
    vqgan: ViTVQGAN
    tokenizer: object = None


def build_parti(preset: Preset, *, seed: int = 0, device="cpu", dtype: torch.dtype = torch.float32,
                meta: bool | None = None, tokenizer: bool = True) -> PartiParts:
    """Build every part of ``preset``: on the meta device (``meta``, by default the released sizes) or with random
    weights; the ViT-VQGAN stays float32, so a run's images do not change with the Transformer's dtype beyond its tokens."""
    meta = preset.meta if meta is None else meta
    transformer = build_transformer(preset, seed=seed, device=device, dtype=dtype, meta=meta)
    vqgan = build_vitvqgan(preset.vqgan, seed=seed + 1, device=device, meta=meta)
    tok = text_tokenizer(preset.transformer) if tokenizer else None
    return PartiParts(preset=preset, transformer=transformer, vqgan=vqgan, tokenizer=tok)
