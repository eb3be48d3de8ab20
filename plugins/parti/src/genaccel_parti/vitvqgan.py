"""The ViT-VQGAN image tokenizer (Yu et al. 2021, as Parti uses it, Sec. 2.1), in plain torch.

Encoder: an RGB image in [0, 1] cut into ``patch_size``² patches, one token each (a linear map and a learned
position per token), pre-LN ViT blocks, a final LayerNorm and a two-layer feed-forward with tanh in the middle,
then the factorized lookup: a linear map down to ``code_dim`` and the nearest of the l2-normalized codes
(cosine similarity, both sides on the unit sphere).

Decoder (the detokenizer): each token's l2-normalized code, a linear map back up to the width, a learned position,
pre-LN ViT blocks, a final LayerNorm and a two-layer feed-forward with tanh that gives each token its patch of
pixels; patches regrouped in raster order into the image.  Parti removed the final sigmoid and reads the raw values
as RGB in [0, 1]; the image is clamped to that range.

Images are (B, H, W, 3) in [0, 1]; tokens (B, grid²) code indices in raster order.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .presets import ViTShape, ViTVQGANShape


class ViTStack(nn.Module):
    """Learned positions, ``shape.layers`` pre-LN Transformer blocks (GELU MLP) and a final LayerNorm."""

    def __init__(self, shape: ViTShape, tokens: int):
        super().__init__()
        self.position = nn.Parameter(torch.randn(1, tokens, shape.width) * 0.02)
        block = nn.TransformerEncoderLayer(shape.width, shape.heads, shape.mlp, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(block, shape.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(shape.width)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.norm(self.blocks(hidden + self.position))


def feed_forward(width: int, out: int) -> nn.Sequential:
    """ViT-VQGAN's output feed-forward: two linear layers with tanh between them."""
    return nn.Sequential(nn.Linear(width, width), nn.Tanh(), nn.Linear(width, out))


def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, H, W, C) → (B, (H/p)·(W/p), p·p·C), patches in raster order."""
    b, h, w, c = images.shape
    x = images.reshape(b, h // patch, patch, w // patch, patch, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, (h // patch) * (w // patch), patch * patch * c)


def unpatchify(patches: torch.Tensor, patch: int, grid: int, channels: int = 3) -> torch.Tensor:
    """The inverse of :func:`patchify` for a ``grid`` x ``grid`` square of patches."""
    b = patches.shape[0]
    x = patches.reshape(b, grid, grid, patch, patch, channels).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, grid * patch, grid * patch, channels)


class ViTVQGAN(nn.Module):
    """Encoder, codebook and decoder of one :class:`~genaccel_parti.presets.ViTVQGANShape`."""

    def __init__(self, shape: ViTVQGANShape):
        super().__init__()
        self.shape = shape
        enc, dec = shape.encoder, shape.decoder
        self.to_tokens = nn.Linear(shape.patch_dim, enc.width)
        self.encoder = ViTStack(enc, shape.tokens)
        self.encoder_out = feed_forward(enc.width, enc.width)
        self.project_down = nn.Linear(enc.width, shape.code_dim)
        self.codebook = nn.Embedding(shape.codebook_size, shape.code_dim)  # normal init, as ViT-VQGAN's
        self.project_up = nn.Linear(shape.code_dim, dec.width)
        self.decoder = ViTStack(dec, shape.tokens)
        self.to_pixels = feed_forward(dec.width, shape.patch_dim)
        self.reset_output_bias()

    def reset_output_bias(self) -> None:
        """Random weights: images around mid-gray rather than half clamped at black (call after drawing weights)."""
        with torch.no_grad():
            self.to_pixels[-1].bias.fill_(0.5)

    def check_images(self, images: torch.Tensor) -> None:
        s = self.shape
        if images.dim() != 4 or tuple(images.shape[1:]) != (s.image_size, s.image_size, s.channels):
            raise ValueError(f"this ViT-VQGAN takes (batch, {s.image_size}, {s.image_size}, {s.channels}) images "
                             f"in [0, 1]; got a tensor of shape {tuple(images.shape)}")

    def check_tokens(self, tokens: torch.Tensor) -> None:
        if tokens.dim() != 2 or tokens.shape[1] != self.shape.tokens:
            raise ValueError(f"this ViT-VQGAN decodes (batch, {self.shape.tokens}) tokens (a {self.shape.grid}x"
                             f"{self.shape.grid} grid in raster order); got a tensor of shape {tuple(tokens.shape)}")

    def latents(self, images: torch.Tensor) -> torch.Tensor:
        """(B, H, W, 3) images → (B, N, code_dim) l2-normalized latents in the lookup space."""
        self.check_images(images)
        hidden = self.encoder(self.to_tokens(patchify(images, self.shape.patch_size)))
        return F.normalize(self.project_down(self.encoder_out(hidden)), dim=-1)

    def quantize(self, latents: torch.Tensor) -> torch.Tensor:
        """The nearest l2-normalized code of each latent (largest cosine similarity): (B, N) indices."""
        codes = F.normalize(self.codebook.weight, dim=-1)
        return (latents @ codes.t()).argmax(dim=-1)

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """(B, H, W, 3) images in [0, 1] → (B, grid²) code indices."""
        return self.quantize(self.latents(images))

    def lookup(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, N) code indices → (B, N, code_dim) l2-normalized codes."""
        return F.normalize(self.codebook(tokens), dim=-1)

    @torch.no_grad()
    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, grid²) code indices → (B, H, W, 3) images in [0, 1]."""
        self.check_tokens(tokens)
        hidden = self.decoder(self.project_up(self.lookup(tokens)))
        patches = self.to_pixels(hidden)
        return unpatchify(patches, self.shape.patch_size, self.shape.grid, self.shape.channels).clamp(0.0, 1.0)


def build_vitvqgan(shape: ViTVQGANShape, *, seed: int = 0, device="cpu", dtype: torch.dtype = torch.float32,
                   meta: bool = False) -> ViTVQGAN:
    """The tokenizer in eval mode: on the meta device (shapes only) or with random weights drawn from ``seed``."""
    if meta:
        with torch.device("meta"):
            return ViTVQGAN(shape).eval()
    torch.manual_seed(seed)
    module = ViTVQGAN(shape).to(device)
    return (module if dtype == torch.float32 else module.to(dtype)).eval()


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def stack_parameters(module: ViTVQGAN) -> dict[str, int]:
    """Parameters of each half: the encoder (patch map, ViT, output feed-forward, projection down) and the decoder
    (projection up, ViT, pixel feed-forward); the codebook apart."""
    enc = (module.to_tokens, module.encoder, module.encoder_out, module.project_down)
    dec = (module.project_up, module.decoder, module.to_pixels)
    return {"encoder": sum(map(count_parameters, enc)), "decoder": sum(map(count_parameters, dec)),
            "codebook": count_parameters(module.codebook)}
