"""parti/t-i's presets: Parti's architecture at tiny (tests), small (the CPU bench) and the paper's four sizes.
Plain data (no torch), so presets can be read at registration.

The paper-size numbers are Parti's (arXiv 2206.10789):

- Table 1: encoder layers / decoder layers / model dims / MLP dims / heads = 12/12/1024/4096/16 (350M),
  12/36/1024/4096/16 (750M), 12/36/2048/8192/32 (3B), 16/64/4096/16384/64 (20B, the study's "80 layers, 4096").
  The totals match the Transformer layers alone (the embedding tables and the softmax are left out): 352M, 755M,
  3.02B and 20.4B here (+0.8%, +0.8%, +0.7%, +2.0%), against 386M, 789M, 3.09B and 20.5B with them.
- Sec. 2.2: a SentencePiece text vocabulary of 16,000, at most 128 text tokens, 1024 image tokens (32x32 codes of
  a 256x256 image), a softmax over 8192 image codes; Sec. 3: a final layer norm after the encoder and the decoder.
- Sec. 2.1: the ViT-VQGAN-Small encoder (8 blocks, 8 heads, width 512, MLP 2048) and codebook, and the finetuned
  larger decoder (32 blocks, 16 heads, width 1280, MLP 5120, "about 600M"); 8x8 patches of 256x256 images.
  Here: 26.4M in the encoder, 633M in the decoder, 0.26M in the codebook.
  Codes are 32 wide (ViT-VQGAN's factorized lookup space).
- Sec. 5: classifier-free guidance scale 1.2 for every reported result.
"""

from __future__ import annotations

import attrs
from genaccel.api import divides, positive

# The decoder's vocabulary: two special ids, then the image codes (code c is id c + IMAGE_OFFSET).  The padding id
# is 0 in both vocabularies (M2M100 has one pad_token_id) and small, so the sinusoidal table stays 1026 rows.
IMAGE_PAD = 0
IMAGE_BOS = 1
IMAGE_OFFSET = 2
# The text vocabulary's special tokens, ids 0, 1, 2 (SentencePiece/T5 order).
TEXT_SPECIALS = ("<pad>", "</s>", "<unk>")
TEXT_PAD = 0
TEXT_EOS = 1


@attrs.frozen
class TransformerShape:
    """Parti's encoder-decoder (Table 1): ``encoder_layers`` over the text, ``decoder_layers`` (causal, with
    cross-attention to the text) over the image tokens, all ``d_model`` wide with ``heads`` heads and a ReLU MLP of
    ``mlp``."""

    d_model: int = attrs.field(validator=positive)
    encoder_layers: int = attrs.field(validator=positive)
    decoder_layers: int = attrs.field(validator=positive)
    heads: int = attrs.field(validator=divides("d_model"))
    mlp: int = attrs.field(validator=positive)
    text_vocab_size: int = attrs.field(default=16_000, validator=positive)
    max_text_len: int = attrs.field(default=128, validator=positive)


@attrs.frozen
class ViTShape:
    """One ViT stack of the image tokenizer: ``layers`` pre-LN blocks of ``width`` with ``heads`` heads, MLP ``mlp``."""

    width: int = attrs.field(validator=positive)
    layers: int = attrs.field(validator=positive)
    heads: int = attrs.field(validator=divides("width"))
    mlp: int = attrs.field(validator=positive)


VIT_SMALL = ViTShape(512, 8, 8, 2048)  # ViT-VQGAN Table 2 "Small": Parti's encoder
VIT_BASE = ViTShape(768, 12, 12, 3072)  # ViT-VQGAN Table 2 "Base"
VIT_LARGE = ViTShape(1280, 32, 16, 5120)  # ViT-VQGAN Table 2 "Large": Parti's finetuned decoder


@attrs.frozen
class ViTVQGANShape:
    """The ViT-VQGAN image tokenizer: ``patch_size``² patches of an ``image_size``² RGB image, one token each, each
    quantized to one of ``codebook_size`` l2-normalized ``code_dim``-wide codes; an encoder and a decoder ViT."""

    image_size: int = attrs.field(default=256, validator=positive)
    patch_size: int = attrs.field(default=8, validator=divides("image_size"))
    codebook_size: int = attrs.field(default=8192, validator=positive)
    code_dim: int = attrs.field(default=32, validator=positive)
    encoder: ViTShape = VIT_SMALL
    decoder: ViTShape = VIT_LARGE
    channels: int = 3

    @property
    def grid(self) -> int:
        """Tokens along each side (256 / 8 = 32)."""
        return self.image_size // self.patch_size

    @property
    def tokens(self) -> int:
        """Tokens per image, in raster order (32 x 32 = 1024)."""
        return self.grid * self.grid

    @property
    def patch_dim(self) -> int:
        """Pixel values per patch (8 x 8 x 3 = 192)."""
        return self.patch_size * self.patch_size * self.channels


@attrs.frozen
class Preset:
    """One size of the whole model: the Transformer, the image tokenizer, and the paper's parameter count of the
    Transformer (``paper_params``, None for the sizes the paper has not); ``meta``: built on the meta device."""

    name: str
    transformer: TransformerShape
    vqgan: ViTVQGANShape
    paper_params: int | None = None
    guidance_scale: float = 1.2
    meta: bool = False

    @property
    def image_tokens(self) -> int:
        return self.vqgan.tokens

    @property
    def image_vocab_size(self) -> int:
        """The decoder's vocabulary: ``<pad>``, ``<bos>`` and every code."""
        return self.vqgan.codebook_size + IMAGE_OFFSET


def _released(name: str, d_model: int, encoder_layers: int, decoder_layers: int, heads: int, params: float) -> Preset:
    shape = TransformerShape(d_model, encoder_layers, decoder_layers, heads, mlp=4 * d_model)
    return Preset(name, shape, ViTVQGANShape(), paper_params=int(params), meta=True)


PRESETS = {
    # tests: seconds.  32x32 images of 4x4 patches → 8x8 = 64 tokens of 256 codes
    "tiny": Preset("tiny", TransformerShape(64, 2, 2, 4, 256, text_vocab_size=1000, max_text_len=64),
                   ViTVQGANShape(image_size=32, patch_size=4, codebook_size=256, code_dim=8,
                                 encoder=ViTShape(32, 1, 2, 64), decoder=ViTShape(32, 1, 2, 64))),
    # the CPU bench: the released grid and codebook (1024 tokens of 8192 codes → 256x256), a 2+8-layer Transformer
    # of width 512 (the 20B's 1:4 encoder:decoder ratio), ~56M parameters
    "small": Preset("small", TransformerShape(512, 2, 8, 8, 2048),
                    ViTVQGANShape(encoder=ViTShape(256, 2, 4, 1024), decoder=ViTShape(256, 2, 4, 1024))),
    # the paper's Table 1, with the released tokenizer (ViT-VQGAN-Small encoder, the large decoder)
    "350m": _released("350m", 1024, 12, 12, 16, 350e6),
    "750m": _released("750m", 1024, 12, 36, 16, 750e6),
    "3b": _released("3b", 2048, 12, 36, 32, 3e9),
    "20b": _released("20b", 4096, 16, 64, 64, 20e9),
}
