"""The shapes of Phenaki's three modules as records: the C-ViViT tokenizer, the MaskGIT transformer and the T5 text
encoder, and the attention implementations they take.  Plain data (no torch), so presets can be read at
registration; the records check their own consistency and answer the shape questions the rest of the plugin asks
(how many frames a video may have, how many tokens it becomes)."""

from __future__ import annotations

import attrs
from genaccel.api import divides, positive

#: the attention implementations Phenaki's modules take (transformers' names): the baseline and SDPA
ATTENTION = ("eager", "sdpa")


def checked_attention(impl: str, module: str) -> str:
    """``impl`` where it is one of :data:`ATTENTION`, else the ValueError naming ``module`` and what it takes."""
    if impl not in ATTENTION:
        raise ValueError(f"attention {impl!r} is not offered by {module}; use one of {ATTENTION}")
    return impl


class FrameCountError(ValueError):
    """A video the tokenizer cannot take: its frame count, size or channels do not fit the C-ViViT."""


@attrs.frozen
class CViViTConfig:
    """C-ViViT (Phenaki Sec. 2.1, App. A Table 6): the first frame cut into ``patch_size``² patches alone, every
    later ``temporal_patch_size`` frames into ``temporal_patch_size``×``patch_size``² space-time patches; a spatial
    transformer within each time step, then a causal temporal transformer across time steps; each token quantized
    to one of ``codebook_size`` factorized, l2-normalized ``code_dim``-wide codes (ViT-VQGAN's).  The decoder mirrors
    the encoder (temporal, then spatial, then one linear map back to pixels)."""

    image_size: int = attrs.field(default=128, validator=positive)
    patch_size: int = attrs.field(default=8, validator=divides("image_size"))
    temporal_patch_size: int = attrs.field(default=2, validator=positive)
    channels: int = attrs.field(default=3, validator=positive)
    hidden_size: int = attrs.field(default=512, validator=positive)
    heads: int = attrs.field(default=8, validator=divides("hidden_size"))
    mlp_size: int = attrs.field(default=2048, validator=positive)
    spatial_layers: int = attrs.field(default=4, validator=positive)
    temporal_layers: int = attrs.field(default=4, validator=positive)
    codebook_size: int = attrs.field(default=8192, validator=positive)
    code_dim: int = attrs.field(default=32, validator=positive)
    layer_norm_eps: float = 1e-6

    @property
    def grid(self) -> int:
        """Tokens along each spatial side of a frame (128 / 8 = 16 in the paper)."""
        return self.image_size // self.patch_size

    def time_steps(self, frames: int) -> int:
        """Token time steps of a ``frames``-frame video: 1 for the first frame, one per later temporal patch."""
        self.check_frames(frames)
        return 1 + (frames - 1) // self.temporal_patch_size

    def frames(self, time_steps: int) -> int:
        """The frame count ``time_steps`` token steps decode to (the inverse of ``time_steps``)."""
        if time_steps < 1:
            raise FrameCountError(f"a token video needs at least one time step, got {time_steps}")
        return 1 + (time_steps - 1) * self.temporal_patch_size

    def token_shape(self, frames: int) -> tuple[int, int, int]:
        """(time steps, rows, columns) of the tokens of a ``frames``-frame video: (1+5, 16, 16) for 1+10 frames."""
        return (self.time_steps(frames), self.grid, self.grid)

    def check_frames(self, frames: int) -> None:
        """Raise ``FrameCountError`` unless the first frame plus whole temporal patches make up ``frames``."""
        tp = self.temporal_patch_size
        if frames >= 1 and (frames - 1) % tp == 0:
            return
        below = 1 + max(0, frames - 1) // tp * tp
        why = (f"{frames} - 1 = {frames - 1} is not divisible by the temporal patch size {tp}" if frames >= 1
               else "a video has at least its first frame")
        raise FrameCountError(
            f"C-ViViT takes 1 + k*{tp} frames (the first frame tokenized alone, then space-time patches of {tp} "
            f"frames), but got {frames} frames: {why}; use {below} or {below + tp} frames")

    def check_video_shape(self, shape: tuple[int, ...]) -> None:
        """Raise ``FrameCountError`` unless ``shape`` is (batch, channels, frames, height, width) of this C-ViViT."""
        if len(shape) != 5:
            raise FrameCountError(f"a video is (batch, channels, frames, height, width); got a tensor of shape {shape}")
        _, c, f, h, w = shape
        if c != self.channels or h != self.image_size or w != self.image_size:
            raise FrameCountError(
                f"this C-ViViT takes {self.channels}-channel frames of {self.image_size}x{self.image_size} (a learned "
                f"{self.grid}x{self.grid} grid of {self.patch_size}x{self.patch_size} patches); got {c} channels of "
                f"{h}x{w}")
        self.check_frames(f)


@attrs.frozen
class MaskGITConfig:
    """The bidirectional masked transformer (Phenaki Sec. 2.2, App. A Table 7, App. B.3.1): ``layers`` BERT-style
    layers of ``hidden_size`` with ``heads`` heads and an ``mlp_size`` MLP, each with cross-attention whose keys and
    values are read from the ``text_dim``-wide T5 embeddings; input tokens are the codebook plus one [MASK] token,
    positions are learned up to ``max_tokens`` (raster order over time, rows, columns)."""

    hidden_size: int = attrs.field(default=2048, validator=positive)
    layers: int = attrs.field(default=24, validator=positive)
    heads: int = attrs.field(default=32, validator=divides("hidden_size"))
    mlp_size: int = attrs.field(default=8192, validator=positive)
    codebook_size: int = attrs.field(default=8192, validator=positive)
    text_dim: int = attrs.field(default=4096, validator=positive)
    max_tokens: int = attrs.field(default=1536, validator=positive)
    layer_norm_eps: float = 1e-6

    @property
    def mask_token_id(self) -> int:
        """The [MASK] token: the id after the last code."""
        return self.codebook_size

    @property
    def vocab_size(self) -> int:
        """Input vocabulary: every code and [MASK]; the output predicts codes only."""
        return self.codebook_size + 1


@attrs.frozen
class T5Shape:
    """A T5 v1.1 encoder (gated-GELU), the text encoder Phenaki conditions on (frozen T5X embeddings)."""

    d_model: int = attrs.field(validator=positive)
    d_ff: int = attrs.field(validator=positive)
    layers: int = attrs.field(validator=positive)
    heads: int = attrs.field(validator=divides("d_model"))
    vocab_size: int = attrs.field(default=32128, validator=positive)

    def config_kwargs(self) -> dict:
        """Keyword arguments of ``transformers.T5Config`` for this encoder."""
        return {"vocab_size": self.vocab_size, "d_model": self.d_model, "d_ff": self.d_ff, "num_layers": self.layers,
                "num_heads": self.heads, "d_kv": self.d_model // self.heads, "feed_forward_proj": "gated-gelu",
                "is_encoder_decoder": False}
