"""make-a-video's presets (random weights of the real architecture at tiny, small and the released
sizes: tiny and small are the core's reduced parts with UNet3D blocks) and its scheduler config.  Plain data, read
at registration."""

from genaccel.api import reduced_parts

#: ModelScope text-to-video's scheduler config (DDIM with SD's training betas)
SCHEDULER = {
    "_class_name": "DDIMScheduler", "num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
    "beta_schedule": "scaled_linear", "clip_sample": False, "set_alpha_to_one": False, "steps_offset": 1,
}

PRESETS = {
    "tiny": {**reduced_parts("tiny", blocks="3D"), "image_size": 64, "frames": 4, "steps": 2},  # tests: seconds
    # the CPU bench: the released layout at reduced widths, 8 frames of 128x128
    "small": {**reduced_parts("small", blocks="3D"), "image_size": 128, "frames": 8, "steps": 20},
    "1.7b": {  # the released text-to-video size (~1.7B): OpenCLIP ViT-H text encoder, UNet3D, SD's VAE; 16x256x256
        "text": {"vocab_size": 49408, "hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 23,
                 "num_attention_heads": 16},
        "text_act": "gelu",
        "unet": {"block_out_channels": (320, 640, 1280, 1280), "layers_per_block": 2, "cross_attention_dim": 1024,
                 "attention_head_dim": 64, "norm_num_groups": 32},
        "vae": {"block_out_channels": (128, 256, 512, 512), "layers_per_block": 2, "norm_num_groups": 32},
        "image_size": 256, "frames": 16, "steps": 50, "meta": True,
    },
}
