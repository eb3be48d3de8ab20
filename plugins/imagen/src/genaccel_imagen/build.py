"""Building imagen/t-i: the cascade's parts from a preset (random weights; the released sizes on the
meta device) or from a checkpoint folder of per-stage diffusers pipelines."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from genaccel.api import (
    GenaccelError,
    cannot_load,
    clip_style_tokenizer,
    materialize,
    part_configs,
    t5_style_tokenizer,
)

from .cascade import Stage
from .presets import (
    IF_SCHEDULER,
    IF_SR_SCHEDULER,
    LOW_RES_SCHEDULER,
    NOISING_SCHEDULER,
    PRESETS,
    STAGE_FOLDERS,
    UP_UNET,
    UPSCALER_SCHEDULER,
)
from .workload import Imagen


def _build(make, meta: bool, device, dtype, seed):
    if meta:
        with torch.device("meta"):
            module = make()
        return materialize(module, device, dtype, seed)
    torch.manual_seed(seed)
    module = make().to(device)
    return module if dtype == torch.float32 else module.to(dtype)


def build_preset(preset: dict, *, device, dtype, seed: int) -> dict:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, T5Config, T5EncoderModel

    meta = bool(preset.get("meta"))
    t5 = T5Config(**preset["t5"])
    text_encoder = _build(lambda: T5EncoderModel(t5), meta, device, dtype, seed)
    tokenizer = t5_style_tokenizer(preset["t5"]["vocab_size"])
    base_size, sr_size = preset["sizes"]
    stages = [Stage(kind="base", unet=_build(lambda: UNet2DConditionModel(**preset["base"]), meta, device, dtype, seed + 1),
                    scheduler_config=IF_SCHEDULER, size=base_size),
              Stage(kind="sr", unet=_build(lambda: UNet2DConditionModel(**preset["sr"]), meta, device, dtype, seed + 2),
                    scheduler_config=IF_SR_SCHEDULER, size=sr_size, noise_level=250, noising_config=NOISING_SCHEDULER)]
    up = preset["upscaler"]
    text_cfg, unet_cfg, vae_cfg = part_configs({"text": up["text"], "unet": {**UP_UNET, **up["unet"]}, "vae": up["vae"],
                                                "image_size": sr_size * 4})
    unet_cfg.update(in_channels=7, out_channels=4, sample_size=sr_size)
    vae_cfg["scaling_factor"] = 0.08333
    stages.append(Stage(kind="upscaler", size=sr_size * 4, noise_level=100, noising_config=LOW_RES_SCHEDULER,
                        scheduler_config=UPSCALER_SCHEDULER, tokenizer=clip_style_tokenizer(up["text"]["vocab_size"]),
                        text_encoder=_build(lambda: CLIPTextModel(text_cfg), meta, device, dtype, seed + 3),
                        unet=_build(lambda: UNet2DConditionModel(**unet_cfg), meta, device, dtype, seed + 4),
                        vae=_build(lambda: AutoencoderKL(**vae_cfg), meta, device, dtype, seed + 5)))
    return {"tokenizer": tokenizer, "text_encoder": text_encoder, "stages": stages}


def load_checkpoint(path, *, device, dtype) -> dict:
    """``DIR/stage_1`` (an ``IFPipeline`` folder: T5 encoder, tokenizer, UNet, scheduler), ``DIR/stage_2`` (an
    ``IFSuperResolutionPipeline`` folder, text encoder optional) and optionally ``DIR/stage_3`` (a
    ``StableDiffusionUpscalePipeline`` folder)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import AutoTokenizer, CLIPTextModel, T5EncoderModel

    path = Path(path)
    if not path.is_dir():
        raise GenaccelError(f"checkpoint {str(path)!r} is not a folder")
    present = [(path / f / "model_index.json").is_file() for f in STAGE_FOLDERS]
    if not present[0] or not present[1]:
        missing = [f for f, ok in zip(STAGE_FOLDERS[:2], present) if not ok]
        raise GenaccelError(f"checkpoint {str(path)!r} lacks the cascade stage(s) {', '.join(missing)} "
                            f"(diffusers pipeline folders with model_index.json)")

    def load(what, fn, folder):
        try:
            return fn(folder)
        except Exception as e:  # noqa: BLE001 - any failure here is a broken folder
            raise cannot_load(folder, f"its {what}", e) from None

    def scheduler(folder):
        return json.loads((folder / "scheduler_config.json").read_text())

    def unet(folder):
        return UNet2DConditionModel.from_pretrained(folder, torch_dtype=dtype).to(device)

    s1, s2 = path / "stage_1", path / "stage_2"
    tokenizer = load("tokenizer", AutoTokenizer.from_pretrained, s1 / "tokenizer")
    text_encoder = load("text encoder", lambda p: T5EncoderModel.from_pretrained(p, dtype=dtype).to(device),
                        s1 / "text_encoder")
    base_unet = load("unet", unet, s1 / "unet")
    sr_unet = load("unet", unet, s2 / "unet")
    stages = [Stage(kind="base", unet=base_unet, scheduler_config=load("scheduler", scheduler, s1 / "scheduler"),
                    size=base_unet.config.sample_size),
              Stage(kind="sr", unet=sr_unet, scheduler_config=load("scheduler", scheduler, s2 / "scheduler"),
                    size=sr_unet.config.sample_size, noise_level=250,
                    noising_config=load("image noising scheduler", scheduler, s2 / "image_noising_scheduler"))]
    if present[2]:
        s3 = path / "stage_3"
        vae = load("vae", lambda p: AutoencoderKL.from_pretrained(p, torch_dtype=dtype).to(device), s3 / "vae")
        up_unet = load("unet", unet, s3 / "unet")
        scale = 2 ** (len(vae.config.block_out_channels) - 1)
        stages.append(Stage(kind="upscaler", unet=up_unet, size=up_unet.config.sample_size * scale, noise_level=100,
                            scheduler_config=load("scheduler", scheduler, s3 / "scheduler"),
                            noising_config=load("low-res scheduler", scheduler, s3 / "low_res_scheduler"),
                            tokenizer=load("tokenizer", AutoTokenizer.from_pretrained, s3 / "tokenizer"),
                            text_encoder=load("text encoder", lambda p: CLIPTextModel.from_pretrained(p, dtype=dtype)
                                              .to(device), s3 / "text_encoder"),
                            vae=vae))
    return {"tokenizer": tokenizer, "text_encoder": text_encoder, "stages": stages}


def build(options) -> Imagen:
    dtype, device = options.torch_dtype, options.device
    if options.checkpoint is not None:
        parts = load_checkpoint(options.checkpoint, device=device, dtype=dtype)
        defaults = {"steps": (100, 50, 75), "stages": len(parts["stages"])}
        name, random_weights = f"imagen ({Path(options.checkpoint).name})", False
    else:
        preset = options.preset_in(PRESETS, "imagen/t-i")
        parts = build_preset(PRESETS[preset], device=device, dtype=dtype, seed=options.seed)
        defaults = {"steps": PRESETS[preset]["steps"], "stages": PRESETS[preset]["stages"]}
        name, random_weights = f"imagen {preset}", True
    return Imagen(**parts, defaults=defaults, device=device, dtype=dtype, random_weights=random_weights, name=name,
                  data=options.data)
