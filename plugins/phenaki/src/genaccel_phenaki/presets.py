"""phenaki/t-v's presets: the paper's architecture at tiny (tests), small (the CPU bench) and the paper's sizes.
Plain data, read at registration.

The ``1.8b`` numbers are Phenaki's App. A and B (arXiv 2210.02399):

- C-ViViT (Table 6, B.1.1): 11 frames of 128x128x3; 8x8 patches for the first frame, 2x8x8 after; tokens
  (1+5)x16x16; width 512, 8 heads, MLP 2048, 4 spatial and 4 temporal layers in the encoder and the same in
  the decoder; codebook 8192 of 32-wide factorized codes.  "All encoder-decoder baselines have approximately 50M
  parameters": 51.4M here.
- MaskGIT (Table 7, B.3.1): 1536 tokens, 24 layers of 2048, 32 heads, MLP 8192, T5X embeddings through
  cross-attention, "resulting in 1.8B parameters": 1.836B here (+2.0%).  The paper's 0.9B variant (20 layers
  of 1536, 24 heads, MLP 6144) comes to 0.929B with the same layout.
- Text: T5X embeddings of a frozen T5-XXL, precomputed (t5-v1_1-xxl's encoder here: 4096 wide, 24 layers,
  64 heads, gated-GELU MLP 10240; 4.76B, not part of the 1.8B).
- Inference (B.3.5): 48 MaskGIT iterations, guidance weight λ = 12, temperature 8.0.

Guidance: the shared parallel-decoding loop guides logits as ``u + s·(c − u)`` (unconditional ``u``,
conditional ``c``, diffusers' and Muse's convention).  Phenaki gives its weight λ without the formula: λ = 12
for the paper's videos and λ = 0.1 in its comparison with NUWA, which only makes sense as ``c + λ·(c − u)``
(λ = 0.1 as ``u + 0.1·(c − u)`` would nearly ignore the text).  ``c + λ·(c − u) = u + (1 + λ)·(c − u)``, so a
preset's default ``--guidance-scale`` is ``s = 1 + λ``: 13 for λ = 12.  ``--guidance-scale`` takes ``s``.
"""

from __future__ import annotations

import attrs

from .config import CViViTConfig, MaskGITConfig, T5Shape


@attrs.frozen
class Preset:
    """One size of the whole model and its decoding defaults; checks that the three modules fit together.

    ``guidance_weight``: Phenaki's λ (``guidance_scale`` is the loop's ``s = 1 + λ``, module docstring);
    ``temperature``: MaskGIT's choice temperature of the re-masking noise at its start, annealed linearly to 0;
    ``text_length``: the T5 tokens every prompt is padded (or cut) to, so every step has the same shapes."""

    name: str
    cvivit: CViViTConfig
    maskgit: MaskGITConfig
    t5: T5Shape
    frames: int
    steps: int
    guidance_weight: float
    temperature: float
    text_length: int = 64
    meta: bool = False

    def __attrs_post_init__(self) -> None:
        self.cvivit.check_frames(self.frames)
        if self.maskgit.codebook_size != self.cvivit.codebook_size:
            raise ValueError(f"{self.name}: MaskGIT predicts {self.maskgit.codebook_size} codes but C-ViViT has "
                             f"{self.cvivit.codebook_size}")
        if self.maskgit.text_dim != self.t5.d_model:
            raise ValueError(f"{self.name}: MaskGIT reads {self.maskgit.text_dim}-wide text, T5 gives {self.t5.d_model}")
        if self.tokens > self.maskgit.max_tokens:
            raise ValueError(f"{self.name}: {self.frames} frames make {self.tokens} tokens, MaskGIT has "
                             f"{self.maskgit.max_tokens} positions")

    @property
    def guidance_scale(self) -> float:
        """The loop's guidance scale ``s`` for Phenaki's weight λ: ``c + λ·(c − u) = u + (1 + λ)·(c − u)``."""
        return 1.0 + self.guidance_weight

    @property
    def token_shape(self) -> tuple[int, int, int]:
        """(time steps, rows, columns) of the preset's video tokens."""
        return self.cvivit.token_shape(self.frames)

    @property
    def tokens(self) -> int:
        t, h, w = self.token_shape
        return t * h * w


def _preset(name: str, cvivit: CViViTConfig, maskgit: dict, t5: T5Shape, frames: int, **decoding) -> Preset:
    """A preset whose MaskGIT takes exactly the tokens of ``frames`` frames, with C-ViViT's codebook and T5's width."""
    t, h, w = cvivit.token_shape(frames)
    transformer = MaskGITConfig(**maskgit, codebook_size=cvivit.codebook_size, text_dim=t5.d_model,
                                max_tokens=t * h * w)
    return Preset(name=name, cvivit=cvivit, maskgit=transformer, t5=t5, frames=frames, **decoding)


PRESETS = {
    # tests: seconds.  5 frames of 32x32 → (1+2)x4x4 = 48 tokens
    "tiny": _preset("tiny", CViViTConfig(image_size=32, hidden_size=32, heads=2, mlp_size=64, spatial_layers=1,
                                         temporal_layers=1, codebook_size=64, code_dim=8),
                    dict(hidden_size=32, layers=2, heads=2, mlp_size=64), T5Shape(32, 64, 2, 2, vocab_size=1000),
                    frames=5, steps=4, guidance_weight=12.0, temperature=8.0),
    # the CPU bench: 5 frames of 64x64 → (1+2)x8x8 = 192 tokens, 12 steps (the paper's NUWA setting)
    "small": _preset("small", CViViTConfig(image_size=64, hidden_size=256, heads=4, mlp_size=1024, spatial_layers=2,
                                           temporal_layers=2, codebook_size=1024, code_dim=32),
                     dict(hidden_size=512, layers=8, heads=8, mlp_size=2048), T5Shape(256, 1024, 4, 4, vocab_size=8192),
                     frames=5, steps=12, guidance_weight=12.0, temperature=8.0),
    # the paper's sizes (module docstring), built on the meta device
    "1.8b": _preset("1.8b", CViViTConfig(), dict(hidden_size=2048, layers=24, heads=32, mlp_size=8192),
                    T5Shape(4096, 10240, 24, 64), frames=11, steps=48, guidance_weight=12.0, temperature=8.0,
                    meta=True),
}
