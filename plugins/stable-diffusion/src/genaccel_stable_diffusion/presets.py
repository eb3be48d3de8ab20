"""stable-diffusion's presets (random weights of the real architecture at tiny, small and the released
sizes: tiny and small are the core's reduced parts) and its scheduler config.  Plain data, read at registration."""

from genaccel.api import reduced_parts

#: SD 1.5's scheduler config (PNDM with the training betas) and its pipeline's defaults
SCHEDULER = {
    "_class_name": "PNDMScheduler", "num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
    "beta_schedule": "scaled_linear", "skip_prk_steps": True, "set_alpha_to_one": False, "steps_offset": 1,
    "clip_sample": False,
}

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
}
