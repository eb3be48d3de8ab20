"""Chameleon's image tokenizer: the VQGAN of the original release, 8192 codes on a 32×32 grid.

transformers ships the encoder half (``ChameleonVQVAE``: encoder, ``quant_conv``, codebook,
``post_quant_conv``); the decoder is here, with the original architecture and parameter names
(``decoder.conv_in``, ``decoder.mid.block_1``, ``decoder.up.{level}.block.{i}``,
``decoder.up.{level}.upsample.conv``, ``decoder.norm_out``, ``decoder.conv_out``), so the
release's ``vqgan.ckpt`` loads into :class:`ImageTokenizer` as it is.
"""

from __future__ import annotations

from pathlib import Path

import torch
from genaccel.api import GenaccelError, StepExecutor, channels_last, first_line
from torch import nn
from transformers import ChameleonVQVAEConfig
from transformers.models.chameleon.modeling_chameleon import (
    ChameleonVQVAEEncoder,
    ChameleonVQVAEEncoderAttnBlock,
    ChameleonVQVAEEncoderResnetBlock,
    ChameleonVQVAEVectorQuantizer,
)

# The decoder's residual and attention blocks are the encoder's (same layers, same names).
ResnetBlock, AttnBlock = ChameleonVQVAEEncoderResnetBlock, ChameleonVQVAEEncoderAttnBlock


def grid_size(config: ChameleonVQVAEConfig) -> int:
    """Side of a VQGAN's latent grid: the resolution halved at every level but the last."""
    return config.resolution // 2 ** (len(config.channel_multiplier) - 1)


class Upsample(nn.Module):
    """Nearest-neighbour ×2, then a 3×3 convolution."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, stride=1, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(nn.functional.interpolate(x, scale_factor=2.0, mode="nearest"))


class VQGANDecoder(nn.Module):
    """Latents (B, latent_channels, h, w) → pixels (B, 3, 2^(L-1)·h, 2^(L-1)·w) in about [-1, 1]."""

    def __init__(self, config: ChameleonVQVAEConfig):
        super().__init__()
        mult = tuple(config.channel_multiplier)
        levels = len(mult)
        attn_at = set(config.attn_resolutions or ())
        block_in = config.base_channels * mult[-1]
        res = config.resolution // 2 ** (levels - 1)
        self.conv_in = nn.Conv2d(config.latent_channels, block_in, kernel_size=3, stride=1, padding=1)
        self.mid = nn.Module()
        self.mid.block_1 = ResnetBlock(config, block_in, block_in)
        self.mid.attn_1 = AttnBlock(block_in) if config.attn_type == "vanilla" else nn.Identity()
        self.mid.block_2 = ResnetBlock(config, block_in, block_in)
        up = []
        for level in reversed(range(levels)):
            stage = nn.Module()
            stage.block, stage.attn = nn.ModuleList(), nn.ModuleList()
            block_out = config.base_channels * mult[level]
            for _ in range(config.num_res_blocks + 1):
                stage.block.append(ResnetBlock(config, block_in, block_out))
                block_in = block_out
                if res in attn_at and config.attn_type == "vanilla":
                    stage.attn.append(AttnBlock(block_in))
            if level != 0:
                stage.upsample = Upsample(block_in)
                res *= 2
            up.insert(0, stage)
        self.up = nn.ModuleList(up)
        self.norm_out = nn.GroupNorm(num_groups=32, num_channels=block_in, eps=1e-6, affine=True)
        self.conv_out = nn.Conv2d(block_in, config.in_channels, kernel_size=3, stride=1, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(self.conv_in(z))))
        for level in reversed(range(len(self.up))):
            stage = self.up[level]
            for i, block in enumerate(stage.block):
                h = block(h)
                if len(stage.attn):
                    h = stage.attn[i](h)
            if level != 0:
                h = stage.upsample(h)
        h = self.norm_out(h)
        return self.conv_out(h * torch.sigmoid(h))


class ImageTokenizer(nn.Module):
    """Pixels ↔ codebook indices.  The encoder parts may be shared with a transformers model."""

    def __init__(self, config: ChameleonVQVAEConfig, *, encoder_from: nn.Module | None = None, decoder: bool = True):
        super().__init__()
        self.config = config
        if encoder_from is not None:  # transformers' ChameleonVQVAE: reuse its modules and weights
            self.encoder, self.quantize = encoder_from.encoder, encoder_from.quantize
            self.quant_conv, self.post_quant_conv = encoder_from.quant_conv, encoder_from.post_quant_conv
        else:
            self.encoder = ChameleonVQVAEEncoder(config)
            self.quantize = ChameleonVQVAEVectorQuantizer(config)
            self.quant_conv = nn.Conv2d(config.latent_channels, config.embed_dim, 1)
            self.post_quant_conv = nn.Conv2d(config.embed_dim, config.latent_channels, 1)
        self.decoder = VQGANDecoder(config) if decoder else None
        self.steps = StepExecutor()  # the decoder's forward: eager unless compile_decoder
        self.encoder_steps = StepExecutor()  # the encoder's forward: eager unless compile_encoder
        self.channels_last = False  # the encoder's convolutions (compile_encoder on CPU)

    def compile_decoder(self, mode: str) -> None:
        """Compile the decoder's forward (static shapes: one image size)."""
        self.steps = StepExecutor(str(self.post_quant_conv.weight.device))
        self.steps.configure(compile=mode, fullgraph=False, dynamic=False)

    def compile_encoder(self, mode: str) -> None:
        """Compile the encoder's forward up to the codebook lookup (static shapes: one image size).
        On CPU its convolutions go channels-last first, oneDNN's layout (a 512² image on a 2-core
        x86 machine: 2.75 s eager, 2.13 s channels-last eager, 1.91 s channels-last compiled)."""
        device = self.post_quant_conv.weight.device
        self.channels_last = device.type == "cpu" and channels_last([self.encoder, self.quant_conv]) > 0
        self.encoder_steps = StepExecutor(str(device))
        self.encoder_steps.configure(compile=mode, fullgraph=False, dynamic=False)

    def _latents(self, pixels: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            pixels = pixels.contiguous(memory_format=torch.channels_last)
        return self.quant_conv(self.encoder(pixels))

    @property
    def grid(self) -> int:
        """Side of the latent grid: an image is ``grid**2`` tokens."""
        return grid_size(self.config)

    @torch.no_grad()
    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, R, R) in [-1, 1] → codebook indices (B, grid²), row-major."""
        _, _, codes = self.quantize(self.encoder_steps.run("encoder", self._latents, pixels).contiguous())
        return codes.view(pixels.shape[0], -1)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Codebook indices (B, grid²) → pixels (B, 3, R, R) in about [-1, 1]."""
        b, g = codes.shape[0], self.grid
        z = self.quantize.embedding(codes.view(b, g, g)).permute(0, 3, 1, 2)
        return self.steps.run("decoder", self.decoder.forward, self.post_quant_conv(z))


def to_uint8(pixels: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [-1, 1] → (B, H, W, 3) uint8 on the CPU."""
    return ((pixels.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu()


# --- the original release's files: vqgan.yaml + vqgan.ckpt ------------------------------------


def config_from_yaml(path: Path) -> ChameleonVQVAEConfig:
    """The release's ``vqgan.yaml`` (``model.params.ddconfig``, ``n_embed``, ``embed_dim``)."""
    import yaml

    try:
        doc = yaml.safe_load(path.read_text())
        params = doc["model"]["params"]
        dd = params["ddconfig"]
        return ChameleonVQVAEConfig(
            embed_dim=params["embed_dim"], num_embeddings=params["n_embed"], double_latent=dd.get("double_z", False),
            latent_channels=dd["z_channels"], resolution=dd["resolution"], in_channels=dd["in_channels"],
            base_channels=dd["ch"], channel_multiplier=list(dd["ch_mult"]), num_res_blocks=dd["num_res_blocks"],
            attn_resolutions=list(dd.get("attn_resolutions") or []), dropout=dd.get("dropout", 0.0),
        )
    except (yaml.YAMLError, KeyError, TypeError) as e:
        raise GenaccelError(f"image tokenizer config {str(path)!r} is not a VQGAN yaml "
                            f"(model.params.ddconfig, n_embed, embed_dim): {type(e).__name__}: {e}") from None


def _files(path: Path) -> tuple[Path, Path]:
    if path.is_dir():
        ckpts = sorted(path.glob("*.ckpt"))
        yamls = sorted(path.glob("*.yaml"))
        if not ckpts or not yamls:
            raise GenaccelError(f"--image-tokenizer {str(path)!r} needs vqgan.yaml and vqgan.ckpt (the release's "
                                f"tokenizer/ folder); found {', '.join(p.name for p in path.iterdir()) or 'nothing'}")
        return ckpts[0], yamls[0]
    if not path.exists():
        raise GenaccelError(f"--image-tokenizer {str(path)!r} does not exist")
    yaml_path = path.with_suffix(".yaml")
    if not yaml_path.exists():
        raise GenaccelError(f"--image-tokenizer {str(path)!r}: no {yaml_path.name} beside it for the architecture")
    return path, yaml_path


def load_image_tokenizer(path: str | Path, *, device="cpu", dtype=torch.float32) -> ImageTokenizer:
    """The release's VQGAN (encoder and decoder) from its folder or its ``.ckpt``."""
    ckpt, yaml_path = _files(Path(path))
    config = config_from_yaml(yaml_path)
    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - unreadable, truncated or holding arbitrary objects
        raise GenaccelError(f"cannot read {str(ckpt)!r} as tensors ({type(e).__name__}: {first_line(e)}); "
                            "if it is a trusted training checkpoint, re-save just its state_dict") from None
    state = state.get("state_dict", state)
    model = ImageTokenizer(config)
    wanted = set(model.state_dict())
    state = {k: v for k, v in state.items() if k in wanted}  # drop the training losses' discriminator
    missing = sorted(wanted - set(state))
    if missing:
        raise GenaccelError(f"{str(ckpt)!r} lacks {len(missing)} VQGAN tensors, e.g. {', '.join(missing[:3])}")
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise GenaccelError(f"{str(ckpt)!r} does not match {yaml_path.name}: {str(e).splitlines()[-1].strip()}") from None
    return model.to(device=device, dtype=dtype).eval()


def save_release_format(model: ImageTokenizer, folder: Path) -> None:
    """Write ``vqgan.yaml`` + ``vqgan.ckpt`` as the release lays them out (tests, conversions)."""
    import yaml

    c = model.config
    folder.mkdir(parents=True, exist_ok=True)
    dd = dict(double_z=c.double_latent, z_channels=c.latent_channels, resolution=c.resolution, in_channels=c.in_channels,
              out_ch=c.in_channels, ch=c.base_channels, ch_mult=list(c.channel_multiplier), num_res_blocks=c.num_res_blocks,
              attn_resolutions=list(c.attn_resolutions or []), dropout=c.dropout)
    doc = {"model": {"params": {"embed_dim": c.embed_dim, "n_embed": c.num_embeddings, "ddconfig": dd}}}
    (folder / "vqgan.yaml").write_text(yaml.safe_dump(doc))
    torch.save({"state_dict": {k: v.cpu() for k, v in model.state_dict().items()}}, folder / "vqgan.ckpt")
