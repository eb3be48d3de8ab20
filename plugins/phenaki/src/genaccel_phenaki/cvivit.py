"""C-ViViT, Phenaki's video tokenizer (Villegas et al. 2022, Sec. 2.1): video frames → discrete tokens → frames.

Encoder: the first frame is cut into ``p``×``p`` patches on its own and every later ``tp`` frames into
``tp``×``p``×``p`` space-time patches, each linearly embedded; a spatial transformer attends within each time
step, then a temporal transformer attends across time steps causally; a linear map to the code width and
ViT-VQGAN's factorized, l2-normalized codebook quantize every token.  The decoder is the encoder upside down:
codes embedded, temporal (causal) then spatial transformer, one linear map back to pixels.

Every map is per time step except the temporal attention, which is masked to earlier steps, so the tokens of
time step ``j`` depend only on frames ``≤ j·tp`` and frames decoded from them only on tokens of steps ``≤ j``:
changing a frame never changes an earlier step's tokens (exactly, bit for bit: masked scores contribute exact
zeros).  That is what lets Phenaki tokenize videos of any length ``1 + k·tp`` and extend a video in time.

The transformer layers are transformers' ``ViTLayer`` (pre-LN attention + GELU MLP, the ViT blocks ViViT and
ViT-VQGAN use); their attention goes through transformers' attention interface, so one shared ``ViTConfig``
switches every layer between the eager matmul-softmax-matmul path and SDPA (``set_attention``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from genaccel.api import AttentionSite
from torch import nn
from transformers import ViTConfig
from transformers.models.vit.modeling_vit import ViTLayer

from .config import CViViTConfig, FrameCountError, checked_attention


def to_patches(video: torch.Tensor, tp: int, p: int) -> torch.Tensor:
    """(B, C, F, H, W) with F divisible by ``tp`` → (B, F/tp, H/p, W/p, tp·p·p·C) space-time patches."""
    b, c, f, h, w = video.shape
    x = video.reshape(b, c, f // tp, tp, h // p, p, w // p, p)
    return x.permute(0, 2, 4, 6, 3, 5, 7, 1).reshape(b, f // tp, h // p, w // p, tp * p * p * c)


def from_patches(patches: torch.Tensor, tp: int, p: int, channels: int) -> torch.Tensor:
    """The inverse of ``to_patches``: (B, T, g, g, tp·p·p·C) → (B, C, T·tp, g·p, g·p)."""
    b, t, gh, gw, _ = patches.shape
    x = patches.reshape(b, t, gh, gw, tp, p, p, channels)
    return x.permute(0, 7, 1, 4, 2, 5, 3, 6).reshape(b, channels, t * tp, gh * p, gw * p)


def sinusoid(length: int, dim: int, *, device, dtype) -> torch.Tensor:
    """Fixed sine/cosine positions (length, dim): no learned table, so the temporal transformer takes any length,
    and position ``t``'s encoding depends on ``t`` alone (causality is kept)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=device, dtype=torch.float32) / max(half, 1))
    angles = torch.arange(length, device=device, dtype=torch.float32)[:, None] * freqs[None]
    table = torch.cat([angles.sin(), angles.cos()], dim=-1)
    return F.pad(table, (0, dim - table.shape[-1])).to(dtype)


def causal_mask(length: int, *, device, dtype) -> torch.Tensor:
    """Additive (1, 1, T, T) mask: query step ``i`` sees key steps ``≤ i`` (the dtype's minimum elsewhere, so the
    masked probabilities are exactly zero under both attention paths)."""
    mask = torch.full((length, length), torch.finfo(dtype).min, device=device, dtype=dtype).triu(1)
    return mask[None, None]


def vit_config(config: CViViTConfig) -> ViTConfig:
    """The ``ViTConfig`` every C-ViViT layer shares (its ``_attn_implementation`` is the attention switch)."""
    vit = ViTConfig(hidden_size=config.hidden_size, num_attention_heads=config.heads,
                    intermediate_size=config.mlp_size, hidden_act="gelu", hidden_dropout_prob=0.0,
                    attention_probs_dropout_prob=0.0, layer_norm_eps=config.layer_norm_eps, qkv_bias=True)
    vit._attn_implementation = "eager"
    return vit


class FactorizedTransformer(nn.Module):
    """A spatial transformer within each time step and a causal temporal transformer across time steps, in the
    encoder's order (spatial first) or the decoder's (temporal first).  Tokens are (B, T, S, D), S = g·g."""

    def __init__(self, config: CViViTConfig, vit: ViTConfig, *, temporal_first: bool):
        super().__init__()
        self.temporal_first = temporal_first
        self.spatial = nn.ModuleList(ViTLayer(vit) for _ in range(config.spatial_layers))
        self.temporal = nn.ModuleList(ViTLayer(vit) for _ in range(config.temporal_layers))
        self.spatial_position = nn.Parameter(torch.randn(config.grid * config.grid, config.hidden_size) * 0.02)

    def spatial_pass(self, x: torch.Tensor) -> torch.Tensor:
        b, t, s, d = x.shape
        h = (x + self.spatial_position).reshape(b * t, s, d)
        for layer in self.spatial:
            h = layer(h)
        return h.reshape(b, t, s, d)

    def temporal_pass(self, x: torch.Tensor) -> torch.Tensor:
        b, t, s, d = x.shape
        h = x + sinusoid(t, d, device=x.device, dtype=x.dtype)[None, :, None]
        h = h.transpose(1, 2).reshape(b * s, t, d)
        mask = causal_mask(t, device=x.device, dtype=x.dtype)
        for layer in self.temporal:
            h = layer(h, mask)
        return h.reshape(b, s, t, d).transpose(1, 2)

    def attention_sites(self, prefix: str) -> list[AttentionSite]:
        """Each layer's attention as a site of the attention record: ``spatial`` (over a time step's g·g tokens)
        and ``temporal`` (over the time steps, causal)."""
        return [AttentionSite(name=f"{prefix}.{kind}.{i}.attention", module=layer.attention, kind=kind)
                for kind in ("spatial", "temporal") for i, layer in enumerate(getattr(self, kind))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.temporal_first:
            return self.spatial_pass(self.temporal_pass(x))
        return self.temporal_pass(self.spatial_pass(x))


class CViViTEncoder(nn.Module):
    """Frames (B, C, 1+k·tp, H, W) → continuous codes (B, 1+k, g, g, code_dim), before quantization."""

    def __init__(self, config: CViViTConfig, vit: ViTConfig):
        super().__init__()
        self.config = config
        p, tp, c, d = config.patch_size, config.temporal_patch_size, config.channels, config.hidden_size
        self.first_patch = nn.Linear(p * p * c, d)
        self.video_patch = nn.Linear(tp * p * p * c, d)
        self.transformer = FactorizedTransformer(config, vit, temporal_first=False)
        self.norm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.to_code = nn.Linear(d, config.code_dim)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        first = self.first_patch(to_patches(video[:, :, :1], 1, cfg.patch_size))
        steps = [first]
        if video.shape[2] > 1:
            steps.append(self.video_patch(to_patches(video[:, :, 1:], cfg.temporal_patch_size, cfg.patch_size)))
        x = torch.cat(steps, dim=1)
        b, t, g, _, d = x.shape
        x = self.transformer(x.reshape(b, t, g * g, d))
        return self.to_code(self.norm(x)).reshape(b, t, g, g, cfg.code_dim)


class CViViTDecoder(nn.Module):
    """Codes (B, 1+k, g, g, code_dim) → frames (B, C, 1+k·tp, H, W): the encoder upside down."""

    def __init__(self, config: CViViTConfig, vit: ViTConfig):
        super().__init__()
        self.config = config
        p, tp, c, d = config.patch_size, config.temporal_patch_size, config.channels, config.hidden_size
        self.from_code = nn.Linear(config.code_dim, d)
        self.transformer = FactorizedTransformer(config, vit, temporal_first=True)
        self.norm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.first_pixels = nn.Linear(d, p * p * c)
        self.video_pixels = nn.Linear(d, tp * p * p * c)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        b, t, g, _, _ = codes.shape
        x = self.transformer(self.from_code(codes).reshape(b, t, g * g, -1))
        x = self.norm(x).reshape(b, t, g, g, -1)
        frames = [from_patches(self.first_pixels(x[:, :1]), 1, cfg.patch_size, cfg.channels)]
        if t > 1:
            rest = self.video_pixels(x[:, 1:])
            frames.append(from_patches(rest, cfg.temporal_patch_size, cfg.patch_size, cfg.channels))
        return torch.cat(frames, dim=2)


class FactorizedQuantizer(nn.Module):
    """ViT-VQGAN's factorized codes, as C-ViViT adopts them: a low-dimensional code space, codes and inputs
    l2-normalized, the nearest code (largest cosine similarity) chosen per token."""

    def __init__(self, config: CViViTConfig):
        super().__init__()
        self.codebook = nn.Embedding(config.codebook_size, config.code_dim)

    def indices(self, z: torch.Tensor) -> torch.Tensor:
        """Continuous codes (..., code_dim) → code ids (...)."""
        codes = F.normalize(self.codebook.weight, dim=-1)
        similarity = F.normalize(z, dim=-1).reshape(-1, z.shape[-1]) @ codes.t()
        return similarity.argmax(dim=-1).reshape(z.shape[:-1])

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        """Code ids (...) → the normalized code vectors (..., code_dim) the decoder reads."""
        return F.normalize(self.codebook(ids), dim=-1)


class CViViT(nn.Module):
    """The tokenizer: ``encode`` frames (B, C, 1+k·tp, H, W) to token ids (B, 1+k, g, g) and ``decode`` them back.
    Frames outside ``1 + k·tp`` (or of another size) raise ``FrameCountError`` saying what would fit."""

    def __init__(self, config: CViViTConfig):
        super().__init__()
        self.config = config
        self.vit_config = vit_config(config)
        self.encoder = CViViTEncoder(config, self.vit_config)
        self.quantizer = FactorizedQuantizer(config)
        self.decoder = CViViTDecoder(config, self.vit_config)

    @property
    def attention(self) -> str:
        return self.vit_config._attn_implementation

    def set_attention(self, impl: str) -> None:
        """Every encoder and decoder layer to ``eager`` (matmul-softmax-matmul) or ``sdpa``."""
        self.vit_config._attn_implementation = checked_attention(impl, "C-ViViT")

    def embed(self, video: torch.Tensor) -> torch.Tensor:
        """Frames → continuous codes before quantization (B, T, g, g, code_dim); checks the video's shape."""
        self.config.check_video_shape(tuple(video.shape))
        return self.encoder(video)

    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """Frames (B, C, 1+k·tp, H, W) → token ids (B, 1+k, g, g)."""
        return self.quantizer.indices(self.embed(video))

    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token ids (B, T, g, g) → frames (B, C, 1+(T-1)·tp, H, W)."""
        g = self.config.grid
        if tokens.dim() != 4 or tokens.shape[2:] != (g, g):
            raise FrameCountError(f"C-ViViT decodes tokens of shape (batch, time steps, {g}, {g}); got "
                                  f"{tuple(tokens.shape)}")
        return self.decoder(self.quantizer.lookup(tokens))
