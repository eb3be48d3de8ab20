"""The parts of latent-diffusion workloads (a CLIP text encoder, a UNet, a VAE): built from a preset's
configs with random weights, or loaded from a local ``diffusers`` pipeline folder."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import AutoencoderKL
from transformers import AutoTokenizer, CLIPTextConfig, CLIPTextModel

from ..errors import GenaccelError
from ..models.tokenizers import clip_style_tokenizer
from ..models.weights import _to, materialize
from .loop import SCHEDULERS


def load_pipeline_folder(path, unet_class, *, device: str, dtype) -> dict:
    """The parts of a local ``diffusers`` pipeline folder (``model_index.json``, ``text_encoder``,
    ``tokenizer``, ``unet``, ``vae``, ``scheduler``), each checked; errors name the folder."""
    path = Path(path)
    if not (path / "model_index.json").is_file():
        raise GenaccelError(f"checkpoint {str(path)!r} has no model_index.json; pass a diffusers pipeline folder")
    missing = [d for d in ("text_encoder", "tokenizer", "unet", "vae", "scheduler") if not (path / d).is_dir()]
    if missing:
        raise GenaccelError(f"checkpoint {str(path)!r} lacks the folder(s) {', '.join(missing)}")
    parts = {}
    for name, folder, load in (
        ("tokenizer", "tokenizer", AutoTokenizer.from_pretrained),
        ("text_encoder", "text_encoder", lambda p: CLIPTextModel.from_pretrained(p, dtype=dtype)),
        ("unet", "unet", lambda p: unet_class.from_pretrained(p, torch_dtype=dtype)),
        ("vae", "vae", lambda p: AutoencoderKL.from_pretrained(p, torch_dtype=dtype)),
        ("scheduler_config", "scheduler", lambda p: json.loads((p / "scheduler_config.json").read_text())),
    ):
        try:
            parts[name] = load(path / folder)
        except Exception as e:  # noqa: BLE001 - any failure here is a broken folder
            raise GenaccelError(f"checkpoint {str(path)!r}: cannot load its {name} ({type(e).__name__}: {e})") from None
    for name in ("text_encoder", "unet", "vae"):
        parts[name] = parts[name].to(device)
    return parts


def scheduler_name(config: dict, default: str) -> str:
    """Our name of a scheduler config's class (``PNDMScheduler`` → ``pndm``), else ``default``."""
    return {cls: name for name, cls in SCHEDULERS.items()}.get(config.get("_class_name"), default)


def part_configs(preset: dict) -> tuple:
    """The configs of a preset's text encoder (``CLIPTextConfig``), UNet and VAE (``AutoencoderKL``
    keyword arguments) from its ``text``, ``unet``, ``vae`` and ``image_size`` fields."""
    p = preset
    text = CLIPTextConfig(**p["text"], max_position_embeddings=77, hidden_act=p.get("text_act", "quick_gelu"),
                          projection_dim=p["text"]["hidden_size"], bos_token_id=0, eos_token_id=1, pad_token_id=1)
    unet = {**p["unet"], "sample_size": p["image_size"] // 8, "in_channels": 4, "out_channels": 4}
    vae = {**p["vae"], "latent_channels": 4, "sample_size": p["image_size"],
           "down_block_types": ("DownEncoderBlock2D",) * len(p["vae"]["block_out_channels"]),
           "up_block_types": ("UpDecoderBlock2D",) * len(p["vae"]["block_out_channels"])}
    return text, unet, vae


def build_parts(preset: dict, *, device: str, dtype, seed: int, unet_class) -> dict:
    """Tokenizer, text encoder (CLIP), UNet (``unet_class``) and VAE (``AutoencoderKL``) of a preset
    (:func:`part_configs`), with random weights.  Presets marked ``meta`` are built on the meta
    device and materialized on ``device``."""
    text, unet_cfg, vae_cfg = part_configs(preset)
    tokenizer = clip_style_tokenizer(preset["text"]["vocab_size"])
    if preset.get("meta"):
        with torch.device("meta"):
            parts = [CLIPTextModel(text), unet_class(**unet_cfg), AutoencoderKL(**vae_cfg)]
        parts = [materialize(m, device, dtype, seed + i) for i, m in enumerate(parts)]
    else:
        torch.manual_seed(seed)
        parts = [_to(m, device, dtype) for m in (CLIPTextModel(text), unet_class(**unet_cfg), AutoencoderKL(**vae_cfg))]
    text_encoder, unet, vae = parts
    return {"tokenizer": tokenizer, "text_encoder": text_encoder, "unet": unet, "vae": vae}


def positive_option(value, default: int, flag: str, multiple: int = 1) -> int:
    """A whole-number option (``--image-size``, ``--frames``) that must be a positive multiple of ``multiple``;
    ``default`` where not given."""
    if value is None:
        return default
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise GenaccelError(f"{flag} {value!r} is not an integer") from None
    if n < 1 or n % multiple:
        raise GenaccelError(f"{flag} must be a positive {'multiple of ' + str(multiple) if multiple > 1 else 'integer'}, "
                            f"got {n}")
    return n
