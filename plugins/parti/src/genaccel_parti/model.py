"""Parti's encoder-decoder Transformer, built from transformers' M2M100 classes.

Why M2M100: Parti (Lingvo, Sec. 2.2 and 3) is a standard Transformer encoder-decoder with pre-LayerNorm layers,
a ReLU MLP of 4x the width, sinusoidal absolute positions and "an additional layer normalization at the output of
both the encoder and decoder".  transformers' M2M100 layers are exactly that layout: ``self_attn_layer_norm`` →
``self_attn``, ``encoder_attn_layer_norm`` → ``encoder_attn`` (cross-attention), ``final_layer_norm`` → ``fc1`` →
ReLU → ``fc2``, with a ``layer_norm`` after each stack and sinusoidal ``embed_positions``.  It is also the layout
of SeamlessM4T v2's (NLLB's) text decoder, the one genaccel's compiled seq2seq decode step drives, with the same
attention and cache interface.  T5 (relative position buckets, RMSNorm without biases) and BART (post-LN, learned
positions) are further from Parti.

Two vocabularies: M2M100 shares one embedding between encoder, decoder and LM head.  Parti reads 16,000 text
tokens and writes 8192 image codes, so :class:`PartiModel` keeps M2M100's shared embedding for the encoder only
(the text vocabulary, tied to ``encoder.embed_tokens``) and gives the decoder its own embedding over the image
vocabulary (``<pad>``, ``<bos>``, then the codes: see :mod:`genaccel_parti.presets`), built from a copy of the
config whose ``vocab_size`` is ``image_vocab_size``; :class:`PartiForConditionalGeneration` has an untied LM head
over the same image vocabulary.  ``<pad>`` and ``<bos>`` are never sampled: :func:`image_token_mask` masks them.

Parti's decoder uses conv-shaped sparse attention during training; here every layer attends densely (causal in
the decoder), the attention whose sequence grows by one per decode step (the study's Fig. 8).
"""

from __future__ import annotations

import copy
import math

import attrs
import torch
from huggingface_hub.dataclasses import strict
from torch import nn
from transformers import AutoConfig, M2M100Config, M2M100ForConditionalGeneration, M2M100Model
from transformers.models.m2m_100.modeling_m2m_100 import (
    M2M100Decoder,
    M2M100Encoder,
    M2M100PreTrainedModel,
    M2M100ScaledWordEmbedding,
)

from .presets import IMAGE_BOS, IMAGE_OFFSET, IMAGE_PAD, TEXT_EOS, TEXT_PAD, Preset


@strict
class PartiConfig(M2M100Config):
    """M2M100's configuration plus the decoder's vocabulary (``vocab_size`` is the text vocabulary)."""

    model_type = "parti"
    image_vocab_size: int = 8192 + IMAGE_OFFSET


AutoConfig.register("parti", PartiConfig, exist_ok=True)  # a saved folder's config, read by AutoTokenizer too


def decoder_config(config: PartiConfig) -> PartiConfig:
    """The decoder's copy of ``config``: the same shapes over the image vocabulary."""
    out = copy.deepcopy(config)
    out.vocab_size = config.image_vocab_size
    return out


class PartiModel(M2M100Model):
    """M2M100's encoder and decoder with separate vocabularies: the shared (text) embedding feeds the encoder only."""

    config_class = PartiConfig
    _tied_weights_keys = {"encoder.embed_tokens.weight": "shared.weight"}

    def __init__(self, config: PartiConfig):
        M2M100PreTrainedModel.__init__(self, config)
        scale = math.sqrt(config.d_model) if config.scale_embedding else 1.0
        self.shared = M2M100ScaledWordEmbedding(config.vocab_size, config.d_model, config.pad_token_id,
                                                embed_scale=scale)
        self.encoder = M2M100Encoder(config)
        self.decoder = M2M100Decoder(decoder_config(config))
        self.post_init()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.shared = self.encoder.embed_tokens = value


class PartiForConditionalGeneration(M2M100ForConditionalGeneration):
    """Text ids in (``input_ids``), image-vocabulary logits out (``lm_head``: ``image_vocab_size`` rows, untied)."""

    config_class = PartiConfig
    _tied_weights_keys = None

    def __init__(self, config: PartiConfig):
        M2M100PreTrainedModel.__init__(self, config)
        self.model = PartiModel(config)
        self.lm_head = nn.Linear(config.d_model, config.image_vocab_size, bias=False)
        self.post_init()


def parti_config(preset: Preset) -> PartiConfig:
    """The preset's Transformer as a config: inference settings (no dropout or layer drop)."""
    shape = preset.transformer
    return PartiConfig(
        vocab_size=shape.text_vocab_size, image_vocab_size=preset.image_vocab_size, d_model=shape.d_model,
        encoder_layers=shape.encoder_layers, decoder_layers=shape.decoder_layers,
        encoder_attention_heads=shape.heads, decoder_attention_heads=shape.heads,
        encoder_ffn_dim=shape.mlp, decoder_ffn_dim=shape.mlp, activation_function="relu",
        max_position_embeddings=max(shape.max_text_len, preset.image_tokens + 1),
        dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, encoder_layerdrop=0.0, decoder_layerdrop=0.0,
        pad_token_id=TEXT_PAD, eos_token_id=TEXT_EOS, bos_token_id=IMAGE_BOS, decoder_start_token_id=IMAGE_BOS,
        scale_embedding=True, tie_word_embeddings=True,
    )


def build_transformer(preset: Preset, *, seed: int = 0, device="cpu", dtype: torch.dtype = torch.float32,
                      meta: bool | None = None, attn_implementation: str = "sdpa") -> PartiForConditionalGeneration:
    """The preset's Transformer in eval mode: on the meta device (shapes only; the released sizes by default) or
    with random weights drawn from ``seed`` on ``device`` in ``dtype``."""
    config = parti_config(preset)
    config._attn_implementation = attn_implementation
    if preset.meta if meta is None else meta:
        with torch.device("meta"):
            return PartiForConditionalGeneration(config).eval()
    torch.manual_seed(seed)
    model = PartiForConditionalGeneration(config).to(device)
    return (model if dtype == torch.float32 else model.to(dtype)).eval()


@attrs.frozen
class ParamCount:
    """A Transformer's parameters, each tensor once: the embedding tables and the softmax apart from the layers
    (Parti's Table 1 counts the layers)."""

    total: int
    text_embedding: int
    image_embedding: int
    lm_head: int

    @property
    def layers(self) -> int:
        return self.total - self.text_embedding - self.image_embedding - self.lm_head


def count_parameters(model: PartiForConditionalGeneration) -> ParamCount:
    """Count on any device (meta included): tied tensors once."""
    return ParamCount(
        total=sum(p.numel() for p in model.parameters()),
        text_embedding=model.model.shared.weight.numel(),
        image_embedding=model.model.decoder.embed_tokens.weight.numel(),
        lm_head=model.lm_head.weight.numel(),
    )


def image_token_mask(config: PartiConfig, device=None) -> torch.Tensor:
    """(image_vocab_size,) bool: the ids a decode step may produce (the codes; not ``<pad>`` or ``<bos>``)."""
    allowed = torch.ones(config.image_vocab_size, dtype=torch.bool, device=device)
    allowed[:IMAGE_OFFSET] = False
    return allowed


def ids_to_codes(ids: torch.Tensor) -> torch.Tensor:
    """Decoder ids of image tokens → ViT-VQGAN code indices."""
    return ids - IMAGE_OFFSET


def codes_to_ids(codes: torch.Tensor) -> torch.Tensor:
    """ViT-VQGAN code indices → decoder ids (teacher forcing, round trips)."""
    return codes + IMAGE_OFFSET


def decoder_inputs(codes: torch.Tensor) -> torch.Tensor:
    """Teacher-forced decoder input of (B, N) codes: ``<bos>`` then every code but the last, (B, N)."""
    bos = torch.full_like(codes[:, :1], IMAGE_BOS)
    return torch.cat([bos, codes_to_ids(codes[:, :-1])], dim=1)


__all__ = ["IMAGE_PAD", "IMAGE_BOS", "IMAGE_OFFSET", "PartiConfig", "PartiModel", "PartiForConditionalGeneration",
           "parti_config", "build_transformer", "ParamCount", "count_parameters", "image_token_mask", "ids_to_codes",
           "codes_to_ids", "decoder_inputs"]
