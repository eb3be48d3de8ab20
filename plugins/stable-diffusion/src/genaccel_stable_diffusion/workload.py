"""Building ``stable-diffusion/t-i``: from a preset's configs (random weights of SD 1.5's or SDXL's layout)
or from a local diffusers pipeline folder.  Either names its pipeline class (the preset's ``pipeline``,
the folder's ``model_index.json``), which picks the model: Stable Diffusion 1.x/2.x
(``StableDiffusionPipeline``) or SDXL's base (``StableDiffusionXLPipeline``)."""

from __future__ import annotations

from pathlib import Path

from genaccel.api import build_parts, load_pipeline_folder, positive_option, read_model_index, scheduler_name

from .model import StableDiffusion
from .presets import PRESETS, SCHEDULER
from .xl import StableDiffusionXL

#: the pipeline folders loaded: their workload class, the parts past SD's, the pipeline's guidance scale
PIPELINES = {
    "StableDiffusionPipeline": (StableDiffusion, (), 7.5),
    "StableDiffusionXLPipeline": (StableDiffusionXL, ("tokenizer_2", "text_encoder_2"), 5.0),
}


def build(options) -> StableDiffusion:
    given = options.options.get("image_size")
    common = dict(device=options.device, dtype=options.torch_dtype, data=options.data)
    if options.checkpoint is None:
        return _from_preset(options, given, common)
    return _from_checkpoint(options, given, common)


def _from_preset(options, given, common) -> StableDiffusion:
    """A preset's model by its pipeline class (SD 1.5's unless it names SDXL's), with its scheduler config
    (SD 1.5's PNDM unless it has its own) and the pipeline's guidance scale."""
    from diffusers import UNet2DConditionModel

    name = options.preset_in(PRESETS, "stable-diffusion/t-i")
    preset = PRESETS[name]
    kind, _, scale = PIPELINES[preset.get("pipeline", "StableDiffusionPipeline")]
    scheduler_config = preset.get("scheduler_config", SCHEDULER)
    size = positive_option(given, preset["image_size"], "--image-size", 8)
    parts = build_parts(preset, device=common["device"], dtype=common["dtype"], seed=options.seed,
                        unet_class=UNet2DConditionModel)
    return _model(kind, parts, common, size=size, scheduler_config=scheduler_config, steps=preset["steps"],
                  scale=scale, random_weights=True, name=f"stable-diffusion {name}")


def _from_checkpoint(options, given, common) -> StableDiffusion:
    """A folder's model by its pipeline class; its image size the UNet's sample size (1024 for SDXL)."""
    from diffusers import UNet2DConditionModel

    index = read_model_index(options.checkpoint, tuple(PIPELINES))
    kind, extra, scale = PIPELINES[index["_class_name"]]
    parts = load_pipeline_folder(options.checkpoint, UNet2DConditionModel, device=common["device"],
                                 dtype=common["dtype"], extra=extra)
    scheduler_config = parts.pop("scheduler_config")
    vae_scale = 2 ** (len(parts["vae"].config.block_out_channels) - 1)
    size = positive_option(given, parts["unet"].config.sample_size * vae_scale, "--image-size", 8)
    if kind is StableDiffusionXL:
        parts["force_zeros"] = bool(index.get("force_zeros_for_empty_prompt", True))
    return _model(kind, parts, common, size=size, scheduler_config=scheduler_config, steps=50, scale=scale,
                  random_weights=False, name=f"stable-diffusion ({Path(options.checkpoint).name})")


def _model(kind, parts, common, *, size: int, scheduler_config: dict, steps: int, scale: float, **extra):
    """The workload of class ``kind`` on its parts, its defaults its pipeline's: the scheduler config's
    class (PNDM if unknown), ``steps`` and guidance ``scale``."""
    defaults = {"scheduler": scheduler_name(scheduler_config, "pndm"), "num_inference_steps": steps,
                "guidance_scale": scale}
    return kind(**parts, **common, image_size=size, scheduler_config=scheduler_config, denoise_defaults=defaults,
                **extra)
