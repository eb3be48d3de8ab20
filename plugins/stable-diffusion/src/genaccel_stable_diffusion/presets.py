"""stable-diffusion's presets (random weights of the real architectures, SD 1.5's and SDXL's, at tiny,
small and the released sizes) and their scheduler configs.  Plain data, read at registration."""

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

PRESETS = {
    "tiny": {  # tests: seconds
        "text": {"vocab_size": 1000, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                 "num_attention_heads": 4},
        "unet": {"block_out_channels": (32, 64, 64), "layers_per_block": 1, "cross_attention_dim": 32,
                 "attention_head_dim": 8, "norm_num_groups": 8, "down_block_types": (_CROSS, _CROSS, _PLAIN),
                 "up_block_types": (_UP_PLAIN, _UP_CROSS, _UP_CROSS)},
        "vae": {"block_out_channels": (16, 16, 16, 16), "layers_per_block": 1, "norm_num_groups": 8},
        "image_size": 64, "steps": 2,
    },
    "small": {  # the CPU bench: SD 1.5's layout at reduced widths, 256x256
        "text": {"vocab_size": 8192, "hidden_size": 512, "intermediate_size": 2048, "num_hidden_layers": 6,
                 "num_attention_heads": 8},
        "unet": {"block_out_channels": (64, 128, 256, 256), "layers_per_block": 2, "cross_attention_dim": 512,
                 "attention_head_dim": 8, "norm_num_groups": 32},
        "vae": {"block_out_channels": (32, 64, 128, 128), "layers_per_block": 2, "norm_num_groups": 32},
        "image_size": 256, "steps": 20,
    },
    "sd-1.5": {  # the released sizes: UNet 859.5M, CLIP ViT-L/14 text encoder 123M, VAE 83.7M
        "text": {"vocab_size": 49408, "hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                 "num_attention_heads": 12},
        "unet": {"block_out_channels": (320, 640, 1280, 1280), "layers_per_block": 2, "cross_attention_dim": 768,
                 "attention_head_dim": 8, "norm_num_groups": 32},
        "vae": {"block_out_channels": (128, 256, 512, 512), "layers_per_block": 2, "norm_num_groups": 32},
        "image_size": 512, "steps": 50, "meta": True,
    },
    "xl-tiny": {  # tests: SDXL's layout in seconds
        **_XL,
        "text": {"vocab_size": 1000, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                 "num_attention_heads": 4},
        "text_2": {"vocab_size": 1000, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                   "num_attention_heads": 4, "hidden_act": "gelu", "projection_dim": 16},
        "unet": {**_XL_UNET, "block_out_channels": (32, 64, 64), "layers_per_block": 1, "attention_head_dim": (2, 4, 4),
                 "transformer_layers_per_block": (1, 1, 2), "cross_attention_dim": 64, "norm_num_groups": 8,
                 "addition_time_embed_dim": 8, "projection_class_embeddings_input_dim": 8 * 6 + 16},
        "vae": {"block_out_channels": (16, 16, 16, 16), "layers_per_block": 1, "norm_num_groups": 8,
                "scaling_factor": 0.13025},
        "image_size": 64, "steps": 2,
    },
    "xl-small": {  # the CPU bench: SDXL's layout at reduced widths and depths, 256x256
        **_XL,
        "text": {"vocab_size": 8192, "hidden_size": 256, "intermediate_size": 1024, "num_hidden_layers": 4,
                 "num_attention_heads": 4},
        "text_2": {"vocab_size": 8192, "hidden_size": 512, "intermediate_size": 2048, "num_hidden_layers": 8,
                   "num_attention_heads": 8, "hidden_act": "gelu", "projection_dim": 512},
        "unet": {**_XL_UNET, "block_out_channels": (64, 128, 256), "attention_head_dim": (2, 4, 8),
                 "transformer_layers_per_block": (1, 2, 4), "cross_attention_dim": 768, "norm_num_groups": 32,
                 "addition_time_embed_dim": 64, "projection_class_embeddings_input_dim": 64 * 6 + 512},
        "vae": {"block_out_channels": (32, 64, 128, 128), "layers_per_block": 2, "norm_num_groups": 32,
                "scaling_factor": 0.13025},
        "image_size": 256, "steps": 20,
    },
    "sdxl-1.0": {  # the released sizes: UNet 2.57B, CLIP ViT-L 123M + OpenCLIP bigG 695M text encoders, VAE 83.7M
        **_XL,
        "text": {"vocab_size": 49408, "hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                 "num_attention_heads": 12},
        "text_2": {"vocab_size": 49408, "hidden_size": 1280, "intermediate_size": 5120, "num_hidden_layers": 32,
                   "num_attention_heads": 20, "hidden_act": "gelu", "projection_dim": 1280},
        "unet": {**_XL_UNET, "block_out_channels": (320, 640, 1280), "attention_head_dim": (5, 10, 20),
                 "transformer_layers_per_block": (1, 2, 10), "cross_attention_dim": 2048, "norm_num_groups": 32,
                 "addition_time_embed_dim": 256, "projection_class_embeddings_input_dim": 256 * 6 + 1280},
        "vae": {"block_out_channels": (128, 256, 512, 512), "layers_per_block": 2, "norm_num_groups": 32,
                "scaling_factor": 0.13025},
        "image_size": 1024, "steps": 50, "meta": True,
    },
}
