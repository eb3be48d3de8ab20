"""The parts of latent-diffusion workloads (a CLIP text encoder, a UNet, a VAE): built from a preset's
configs with random weights, or loaded from a local ``diffusers`` pipeline folder."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import AutoencoderKL
from transformers import AutoTokenizer, CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from ..errors import GenaccelError
from ..files import read_json_object
from ..models.tokenizers import clip_style_tokenizer
from ..models.weights import _to, materialize
from .loop import SCHEDULERS

#: the text encoders a pipeline folder may name (SDXL's second one returns pooled, projected embeddings)
TEXT_ENCODERS = {"CLIPTextModel": CLIPTextModel, "CLIPTextModelWithProjection": CLIPTextModelWithProjection}


def read_model_index(path, pipelines=None) -> dict:
    """A pipeline folder's ``model_index.json``; with ``pipelines`` (the class names a workload loads),
    its ``_class_name`` must be one of them."""
    path = Path(path)
    if not (path / "model_index.json").is_file():
        raise GenaccelError(f"checkpoint {str(path)!r} has no model_index.json; pass a diffusers pipeline folder")
    index = read_json_object(path / "model_index.json", "model_index.json")
    name = index.get("_class_name")
    if pipelines is not None and name not in pipelines:
        raise GenaccelError(f"checkpoint {str(path)!r} holds a {name or 'pipeline without _class_name'}; "
                            f"supported pipelines: {', '.join(pipelines)}")
    return index


def _text_encoder_class(index: dict, part: str, default: str):
    """The transformers class ``model_index.json`` names for a text encoder part (``default`` if none)."""
    entry = index.get(part)
    name = entry[1] if isinstance(entry, list) and len(entry) == 2 and entry[1] else default
    if name not in TEXT_ENCODERS:
        raise GenaccelError(f"model_index.json names {part} a {name}; supported: {', '.join(TEXT_ENCODERS)}")
    return TEXT_ENCODERS[name]


def load_pipeline_folder(path, unet_class, *, device: str, dtype, extra: tuple = ()) -> dict:
    """The parts of a local ``diffusers`` pipeline folder (``model_index.json``, ``text_encoder``,
    ``tokenizer``, ``unet``, ``vae``, ``scheduler``, and the ``extra`` ones: SDXL's ``tokenizer_2``
    and ``text_encoder_2``), each checked; errors name the folder."""
    path = Path(path)
    index = read_model_index(path)
    missing = [d for d in ("text_encoder", "tokenizer", "unet", "vae", "scheduler", *extra) if not (path / d).is_dir()]
    if missing:
        raise GenaccelError(f"checkpoint {str(path)!r} lacks the folder(s) {', '.join(missing)}")
    loaders = {
        "tokenizer": AutoTokenizer.from_pretrained,
        "text_encoder": _text_encoder_class(index, "text_encoder", "CLIPTextModel"),
        "unet": unet_class,
        "vae": AutoencoderKL,
        "scheduler_config": lambda p: json.loads((p / "scheduler_config.json").read_text()),
        "tokenizer_2": AutoTokenizer.from_pretrained,
    }
    if "text_encoder_2" in extra:
        loaders["text_encoder_2"] = _text_encoder_class(index, "text_encoder_2", "CLIPTextModelWithProjection")
    parts = {}
    for name in ("tokenizer", "text_encoder", "unet", "vae", "scheduler_config", *extra):
        parts[name] = _load(path, name, loaders[name], dtype)
    for name, part in parts.items():
        if isinstance(part, torch.nn.Module):
            parts[name] = part.to(device)
    return parts


def _load(path: Path, name: str, loader, dtype):
    """One part from its subfolder; any failure is a one-line error naming the folder and the part."""
    folder = path / ("scheduler" if name == "scheduler_config" else name)
    try:
        if isinstance(loader, type) and name.startswith("text_encoder"):
            return loader.from_pretrained(folder, dtype=dtype)
        if isinstance(loader, type):
            return loader.from_pretrained(folder, torch_dtype=dtype)
        return loader(folder)
    except Exception as e:  # noqa: BLE001 - any failure here is a broken folder
        raise GenaccelError(f"checkpoint {str(path)!r}: cannot load its {name} ({type(e).__name__}: {e})") from None


def scheduler_name(config: dict, default: str) -> str:
    """Our name of a scheduler config's class (``PNDMScheduler`` → ``pndm``), else ``default``."""
    return {cls: name for name, cls in SCHEDULERS.items()}.get(config.get("_class_name"), default)


def clip_config(spec: dict, act: str = "quick_gelu") -> CLIPTextConfig:
    """A CLIP text encoder's config from a preset's ``text`` (or ``text_2``) fields: 77 positions, CLIP's
    token ids, ``act`` and a projection as wide as the hidden states unless ``spec`` names its own
    (SDXL's OpenCLIP encoder: ``hidden_act`` ``gelu``, ``projection_dim``)."""
    return CLIPTextConfig(**{"hidden_act": act, "projection_dim": spec["hidden_size"], **spec},
                          max_position_embeddings=77, bos_token_id=0, eos_token_id=1, pad_token_id=1)


def part_configs(preset: dict) -> tuple:
    """The configs of a preset's text encoder (``CLIPTextConfig``), UNet and VAE (``AutoencoderKL``
    keyword arguments) from its ``text``, ``unet``, ``vae`` and ``image_size`` fields."""
    p = preset
    text = clip_config(p["text"], p.get("text_act", "quick_gelu"))
    unet = {**p["unet"], "sample_size": p["image_size"] // 8, "in_channels": 4, "out_channels": 4}
    vae = {**p["vae"], "latent_channels": 4, "sample_size": p["image_size"],
           "down_block_types": ("DownEncoderBlock2D",) * len(p["vae"]["block_out_channels"]),
           "up_block_types": ("UpDecoderBlock2D",) * len(p["vae"]["block_out_channels"])}
    return text, unet, vae


def part_modules(preset: dict, unet_class) -> dict:
    """A preset's modules with fresh weights, built in this order (the random draws follow it): the
    text encoder, the UNet (``unet_class``), the VAE, and where the preset has a ``text_2`` (SDXL) the
    second text encoder, a ``CLIPTextModelWithProjection``.  Under ``torch.device("meta")`` nothing
    is allocated, which is how the released sizes are counted and built."""
    text, unet_cfg, vae_cfg = part_configs(preset)
    modules = {"text_encoder": CLIPTextModel(text), "unet": unet_class(**unet_cfg), "vae": AutoencoderKL(**vae_cfg)}
    if "text_2" in preset:
        modules["text_encoder_2"] = CLIPTextModelWithProjection(clip_config(preset["text_2"]))
    return modules


def build_parts(preset: dict, *, device: str, dtype, seed: int, unet_class) -> dict:
    """Tokenizer(s) and the modules of a preset (:func:`part_modules`), with random weights.  Presets
    marked ``meta`` are built on the meta device and materialized on ``device``."""
    if preset.get("meta"):
        with torch.device("meta"):
            modules = part_modules(preset, unet_class)
        modules = {k: materialize(m, device, dtype, seed + i) for i, (k, m) in enumerate(modules.items())}
    else:
        torch.manual_seed(seed)
        modules = {k: _to(m, device, dtype) for k, m in part_modules(preset, unet_class).items()}
    tokenizers = {"tokenizer": clip_style_tokenizer(preset["text"]["vocab_size"])}
    if "text_2" in preset:
        tokenizers["tokenizer_2"] = clip_style_tokenizer(preset["text_2"]["vocab_size"])
    return {**tokenizers, **modules}


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
