"""Building ``stable-diffusion/t-i``: from a preset's configs (random weights of SD 1.5's layout) or from
a local diffusers pipeline folder, whose ``model_index.json`` class picks the model: Stable Diffusion
1.x/2.x (``StableDiffusionPipeline``) or SDXL's base (``StableDiffusionXLPipeline``)."""

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
    from diffusers import UNet2DConditionModel

    preset = options.preset_in(PRESETS, "stable-diffusion/t-i")
    size = positive_option(given, PRESETS[preset]["image_size"], "--image-size", 8)
    parts = build_parts(PRESETS[preset], device=common["device"], dtype=common["dtype"], seed=options.seed,
                        unet_class=UNet2DConditionModel)
    defaults = {"scheduler": "pndm", "num_inference_steps": PRESETS[preset]["steps"], "guidance_scale": 7.5}
    return StableDiffusion(**parts, **common, image_size=size, scheduler_config=SCHEDULER, denoise_defaults=defaults,
                           random_weights=True, name=f"stable-diffusion {preset}")


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
    defaults = {"scheduler": scheduler_name(scheduler_config, "pndm"), "num_inference_steps": 50,
                "guidance_scale": scale}
    if kind is StableDiffusionXL:
        parts["force_zeros"] = bool(index.get("force_zeros_for_empty_prompt", True))
    return kind(**parts, **common, image_size=size, scheduler_config=scheduler_config, denoise_defaults=defaults,
                random_weights=False, name=f"stable-diffusion ({Path(options.checkpoint).name})")
