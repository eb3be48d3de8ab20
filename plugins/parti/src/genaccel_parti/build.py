"""One preset's whole model: the encoder-decoder Transformer, the ViT-VQGAN and the text tokenizer, built
together.  Random weights are drawn as genaccel draws every preset's (``init_random_weights``: reproducible,
in float32, N(0, 0.02), norms one), after building on the meta device, so that a released size is never
allocated twice; the Transformer's weights come from ``seed``, the ViT-VQGAN's from ``seed + 1``."""

from __future__ import annotations

import attrs
import torch
from genaccel.api import init_random_weights

from .model import PartiForConditionalGeneration, build_transformer
from .presets import Preset
from .tokenizer import text_tokenizer
from .vitvqgan import ViTVQGAN, build_vitvqgan


@attrs.frozen
class PartiParts:
    """A built model: ``tokenizer`` is None when it was not asked for."""

    preset: Preset
    transformer: PartiForConditionalGeneration
    vqgan: ViTVQGAN
    tokenizer: object = None


def remake_positions(module: torch.nn.Module) -> None:
    """Recompute the sinusoidal position tables (buffers, not weights: ``to_empty`` leaves them undefined)."""
    for sub in module.modules():
        if hasattr(sub, "make_weights") and hasattr(sub, "weights"):
            sub.make_weights(sub.weights.shape[0], sub.embedding_dim, sub.padding_idx)


def build_parti(preset: Preset, *, seed: int = 0, device="cpu", dtype: torch.dtype = torch.float32,
                meta: bool = False, tokenizer: bool = True) -> PartiParts:
    """Every part of ``preset``: on the meta device (``meta``: shapes only) or with random weights on ``device``,
    the Transformer in ``dtype``; the ViT-VQGAN stays float32, so a run's images change with the Transformer's
    dtype only through its tokens."""
    transformer = build_transformer(preset, meta=True).to(dtype)
    vqgan = build_vitvqgan(preset.vqgan, meta=True)
    if not meta:
        transformer = transformer.to_empty(device=device)
        init_random_weights(transformer, seed=seed)
        remake_positions(transformer)
        vqgan = vqgan.to_empty(device=device)
        init_random_weights(vqgan, seed=seed + 1)
        vqgan.reset_output_bias()
    tok = text_tokenizer(preset.transformer) if tokenizer else None
    return PartiParts(preset=preset, transformer=transformer.eval(), vqgan=vqgan.eval(), tokenizer=tok)
