"""muse/t-i's presets: aMUSEd's architecture (U-ViT over VQ tokens, CLIP text encoder, VQ-GAN) at
tiny, small and the released amused-256 size, and its scheduler config.  Plain data, read at
registration."""

def _uvit(hidden, channels, layers, heads, inter, codebook, text_dim, proj_dim, res, size, micro=256):
    return {"hidden_size": hidden, "use_bias": False, "hidden_dropout": 0.0, "cond_embed_dim": proj_dim,
            "micro_cond_encode_dim": micro, "micro_cond_embed_dim": 5 * micro, "encoder_hidden_size": text_dim,
            "vocab_size": codebook + 64, "codebook_size": codebook, "in_channels": channels,
            "block_out_channels": channels, "num_res_blocks": res, "downsample": False, "upsample": False,
            "block_num_heads": max(1, channels // 64), "num_hidden_layers": layers, "num_attention_heads": heads,
            "attention_dropout": 0.0, "intermediate_size": inter, "layer_norm_eps": 1e-6,
            "ln_elementwise_affine": True, "sample_size": size}


def _vq(channels, latent, codebook, groups=32):
    n = len(channels)
    return {"act_fn": "silu", "block_out_channels": tuple(channels), "down_block_types": ("DownEncoderBlock2D",) * n,
            "up_block_types": ("UpDecoderBlock2D",) * n, "in_channels": 3, "out_channels": 3, "latent_channels": latent,
            "layers_per_block": 1 if channels[0] < 64 else 2, "norm_num_groups": groups, "num_vq_embeddings": codebook,
            "mid_block_add_attention": False, "lookup_from_codebook": True, "force_upcast": True}


def _clip(hidden, layers, heads, vocab, proj):
    return {"hidden_size": hidden, "intermediate_size": 4 * hidden, "num_hidden_layers": layers,
            "num_attention_heads": heads, "vocab_size": vocab, "projection_dim": proj, "hidden_act": "gelu",
            "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1, "max_position_embeddings": 77}


PRESETS = {
    "tiny": {"text": _clip(32, 2, 4, 1000, 32), "transformer": _uvit(32, 32, 1, 2, 64, 32, 32, 32, 1, 8, micro=4),
             "vq": _vq((16, 16), 16, 32, groups=8), "steps": 4},
    "small": {"text": _clip(256, 4, 4, 8192, 256),
              "transformer": _uvit(256, 256, 6, 4, 1024, 1024, 256, 256, 1, 16, micro=64),
              "vq": _vq((32, 64, 64, 128, 128), 64, 1024), "steps": 12},
    # amused/amused-256 as diffusers' scripts/convert_amused.py builds it: the text encoder is openMUSE's CLIP
    # ViT-L/14 text tower (768 wide, 12 layers, 12 heads, 768 projection); the U-ViT takes openMUSE/muse-256's
    # config (1024 hidden, 22 layers, 16 heads, 2816 GEGLU, 768-channel conv blocks of 3 res blocks, no down/up
    # sampling, a 16x16 grid, 8192 codes); the VQ-GAN is make_vqvae's (128, 256, 256, 512, 768 channels, 2 layers,
    # 64 latent channels, 8192 codes, no mid-block attention).  Sizes: U-ViT 603.5M (the paper's 603M), VQ-GAN
    # 146M, text encoder 124M.
    "amused-256": {"text": _clip(768, 12, 12, 49408, 768),
                   "transformer": _uvit(1024, 768, 22, 16, 2816, 8192, 768, 768, 3, 16),
                   "vq": _vq((128, 256, 256, 512, 768), 64, 8192), "steps": 12, "meta": True},
}
SCHEDULER = {"_class_name": "AmusedScheduler", "masking_schedule": "cosine"}
