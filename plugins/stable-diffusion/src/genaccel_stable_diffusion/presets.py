"""stable-diffusion's presets (random weights of the real architectures, SD 1.5's and SDXL's, at tiny,
small and the released sizes; SD 1.5's tiny and small are the core's reduced parts) and their scheduler
configs.  Plain data, read at registration."""

from genaccel.api import reduced_parts

#: SD 1.5's scheduler config (PNDM with the training betas) and its pipeline's defaults
SCHEDULER = {
    "_class_name": "PNDMScheduler", "num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
    "beta_schedule": "scaled_linear", "skip_prk_steps": True, "set_alpha_to_one": False, "steps_offset": 1,
    "clip_sample": False,
}

_CROSS, _PLAIN = "CrossAttnDownBlock2D", "DownBlock2D"
_UP_CROSS, _UP_PLAIN = "CrossAttnUpBlock2D", "UpBlock2D"

#: SDXL base's scheduler config (Euler, the same training betas, "leading" spacing) as its folder ships it
XL_SCHEDULER = {
    "_class_name": "EulerDiscreteScheduler", "num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
    "beta_schedule": "scaled_linear", "interpolation_type": "linear", "prediction_type": "epsilon",
    "timestep_spacing": "leading", "steps_offset": 1, "use_karras_sigmas": False,
}
#: SDXL's UNet layout: no attention in the first level, text-time added conditions, linear projections;
#: a preset adds the widths, heads, transformer depths per level and the added-embedding sizes
_XL_UNET = {"down_block_types": (_PLAIN, _CROSS, _CROSS), "up_block_types": (_UP_CROSS, _UP_CROSS, _UP_PLAIN),
            "layers_per_block": 2, "addition_embed_type": "text_time", "use_linear_projection": True}
#: SDXL's pipeline (two text encoders, the pooled projection and time ids) and its scheduler
_XL = {"pipeline": "StableDiffusionXLPipeline", "scheduler_config": XL_SCHEDULER}


def _clip(vocab: int, hidden: int, intermediate: int, layers: int, heads: int, **extra) -> dict:
    """A CLIP text encoder's config."""
    return {"vocab_size": vocab, "hidden_size": hidden, "intermediate_size": intermediate, "num_hidden_layers": layers,
            "num_attention_heads": heads, **extra}


def _xl(text: dict, text_2: dict, unet: dict, vae: dict, *, time_dim: int, **rest) -> dict:
    """An SDXL preset: the UNet cross-attends at both encoders' widths joined and embeds the six time ids
    (``time_dim`` each) with the second encoder's pooled projection; the second encoder uses GELU and the
    VAE SDXL's latent scaling."""
    unet = {**_XL_UNET, **unet, "cross_attention_dim": text["hidden_size"] + text_2["hidden_size"],
            "addition_time_embed_dim": time_dim,
            "projection_class_embeddings_input_dim": time_dim * 6 + text_2["projection_dim"]}
    return {**_XL, "text": text, "text_2": {**text_2, "hidden_act": "gelu"}, "unet": unet,
            "vae": {**vae, "scaling_factor": 0.13025}, **rest}


PRESETS = {
    "tiny": {**reduced_parts("tiny"), "image_size": 64, "steps": 2},  # tests: seconds
    "small": {**reduced_parts("small"), "image_size": 256, "steps": 20},  # the CPU bench: SD 1.5's layout, 256x256
    "sd-1.5": {  # the released sizes: UNet 859.5M, CLIP ViT-L/14 text encoder 123M, VAE 83.7M
        "text": {"vocab_size": 49408, "hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                 "num_attention_heads": 12},
        "unet": {"block_out_channels": (320, 640, 1280, 1280), "layers_per_block": 2, "cross_attention_dim": 768,
                 "attention_head_dim": 8, "norm_num_groups": 32},
        "vae": {"block_out_channels": (128, 256, 512, 512), "layers_per_block": 2, "norm_num_groups": 32},
        "image_size": 512, "steps": 50, "meta": True,
    },
    "xl-tiny": _xl(  # tests: SDXL's layout in seconds
        _clip(1000, 32, 64, 2, 4), _clip(1000, 32, 64, 2, 4, projection_dim=16),
        {"block_out_channels": (32, 64, 64), "layers_per_block": 1, "attention_head_dim": (2, 4, 4),
         "transformer_layers_per_block": (1, 1, 2), "norm_num_groups": 8},
        {"block_out_channels": (16, 16, 16, 16), "layers_per_block": 1, "norm_num_groups": 8},
        time_dim=8, image_size=64, steps=2),
    "xl-small": _xl(  # the CPU bench: SDXL's layout at reduced widths and depths, 256x256
        _clip(8192, 256, 1024, 4, 4), _clip(8192, 512, 2048, 8, 8, projection_dim=512),
        {"block_out_channels": (64, 128, 256), "attention_head_dim": (2, 4, 8), "transformer_layers_per_block": (1, 2, 4),
         "norm_num_groups": 32},
        {"block_out_channels": (32, 64, 128, 128), "layers_per_block": 2, "norm_num_groups": 32},
        time_dim=64, image_size=256, steps=20),
    # the released sizes: UNet 2.57B, CLIP ViT-L 123M + OpenCLIP bigG 695M text encoders, VAE 83.7M
    "sdxl-1.0": _xl(
        _clip(49408, 768, 3072, 12, 12), _clip(49408, 1280, 5120, 32, 20, projection_dim=1280),
        {"block_out_channels": (320, 640, 1280), "attention_head_dim": (5, 10, 20),
         "transformer_layers_per_block": (1, 2, 10), "norm_num_groups": 32},
        {"block_out_channels": (128, 256, 512, 512), "layers_per_block": 2, "norm_num_groups": 32},
        time_dim=256, image_size=1024, steps=50, meta=True),
}
