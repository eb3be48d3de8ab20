"""imagen/t-i's presets and scheduler configs: DeepFloyd IF's cascade as diffusers' ``convert_if.py``
lays it out (the base and super-resolution UNets' configs) and the x4 upscaler's parts, at tiny,
small and the released sizes.  Plain data, read at registration."""

STAGE_NAMES = ("stage I", "stage II", "stage III")
STAGE_FOLDERS = ("stage_1", "stage_2", "stage_3")

#: DeepFloyd IF's schedulers (diffusers' scripts/convert_if.py): DDPM with learned variance and dynamic thresholding
#: at the 0.95 quantile, clipped to 1.5 in stage I and 1.0 in stage II (IF's own stage_I.py / stage_II.py:
#: dynamic_thresholding_c); stage II's noise augmentation, the same cosine schedule
IF_SCHEDULER = {"_class_name": "DDPMScheduler", "num_train_timesteps": 1000, "beta_schedule": "squaredcos_cap_v2",
                "beta_start": 0.0001, "beta_end": 0.02, "thresholding": True, "dynamic_thresholding_ratio": 0.95,
                "sample_max_value": 1.5, "prediction_type": "epsilon", "variance_type": "learned_range",
                "clip_sample": True}
IF_SR_SCHEDULER = {**IF_SCHEDULER, "sample_max_value": 1.0}
NOISING_SCHEDULER = {"_class_name": "DDPMScheduler", "num_train_timesteps": 1000, "beta_schedule": "squaredcos_cap_v2",
                     "beta_start": 0.0001, "beta_end": 0.02}
#: the x4 upscaler's: DDIM with v-prediction; its low-resolution noise augmentation
UPSCALER_SCHEDULER = {"_class_name": "DDIMScheduler", "num_train_timesteps": 1000, "beta_schedule": "scaled_linear",
                      "beta_start": 0.00085, "beta_end": 0.012, "prediction_type": "v_prediction",
                      "clip_sample": False, "set_alpha_to_one": False, "steps_offset": 1}
LOW_RES_SCHEDULER = {"_class_name": "DDPMScheduler", "num_train_timesteps": 1000, "beta_schedule": "scaled_linear",
                     "beta_start": 0.0001, "beta_end": 0.02}

#: what convert_if.py sets on every IF UNet (scale-shift norm, GELU, text pooled into the time embedding, group-norm
#: on the text before the added keys and values) ...
_IF_UNET = dict(mid_block_type="UNetMidBlock2DSimpleCrossAttn", addition_embed_type="text",
                cross_attention_norm="group_norm", resnet_time_scale_shift="scale_shift", act_fn="gelu")
#: ... and on the super-resolution UNets (get_super_res_unet): the augmentation level as a timestep class label,
#: residuals scaled by 1/0.7071, cross-attention only (IF-II's disable_self_attentions), a time embedding as wide
#: as the last level
_SR_EXTRA = dict(class_embed_type="timestep", time_embedding_act_fn="gelu", resnet_skip_time_act=True,
                 resnet_out_scale_factor=1 / 0.7071, mid_block_scale_factor=1 / 0.7071, only_cross_attention=True)
UP_UNET = dict(down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
                num_class_embeds=1000, in_channels=7, out_channels=4)


def _if_unet(channels, layers, *, attention: int, head_dim: int, text_dim: int, pool_heads: int, sr: bool,
             size: int) -> dict:
    """An IF UNet as convert_if.py builds it: ``attention`` lowest-resolution levels with attention
    (``SimpleCrossAttn*``, the original's attention_resolutions), the others ``Resnet*`` (resblock_updown);
    the text (``text_dim``) projected to the first level's width for the attention's added keys and values."""
    n = len(channels)
    cfg = {**_IF_UNET, "block_out_channels": tuple(channels), "layers_per_block": layers, "attention_head_dim": head_dim,
           "cross_attention_dim": channels[0], "encoder_hid_dim": text_dim, "addition_embed_type_num_heads": pool_heads,
           "in_channels": 6 if sr else 3, "out_channels": 6, "sample_size": size, "norm_num_groups": min(32, channels[0] // 2),
           "down_block_types": tuple("SimpleCrossAttnDownBlock2D" if i >= n - attention else "ResnetDownsampleBlock2D"
                                     for i in range(n)),
           "up_block_types": tuple("SimpleCrossAttnUpBlock2D" if i < attention else "ResnetUpsampleBlock2D"
                                   for i in range(n))}
    if sr:
        cfg.update(_SR_EXTRA, time_embedding_dim=channels[-1])
    return cfg


def _t5(d_model, d_ff, layers, heads, vocab=32128) -> dict:
    return {"vocab_size": vocab, "d_model": d_model, "d_ff": d_ff, "num_layers": layers, "num_heads": heads,
            "d_kv": d_model // heads, "feed_forward_proj": "gated-gelu", "is_encoder_decoder": False}


def _clip(width, ffn, layers, heads, vocab) -> dict:
    return {"vocab_size": vocab, "hidden_size": width, "intermediate_size": ffn, "num_hidden_layers": layers,
            "num_attention_heads": heads}


def _upscaler(text: dict, unet: tuple, vae: tuple, *, layers: int, groups: int, **blocks) -> dict:
    """The x4 upscaler's parts, the fields ``part_configs`` reads: a CLIP ``text`` encoder, a UNet of ``unet`` widths
    whose 8-channel attention heads cross-attend to the text, a VAE of ``vae`` widths; ``layers`` blocks a level and
    ``groups`` norm groups in both; ``blocks``: the UNet's block types where not diffusers' defaults."""
    return {"text": text,
            "unet": {"block_out_channels": unet, "layers_per_block": layers, "cross_attention_dim": text["hidden_size"],
                     "attention_head_dim": 8, "norm_num_groups": groups, **blocks},
            "vae": {"block_out_channels": vae, "layers_per_block": layers, "norm_num_groups": groups}}


PRESETS = {
    "tiny": {  # tests: seconds.  8x8 base, 32x32 super-resolution, x4 upscaler to 128x128
        "t5": _t5(32, 64, 2, 4, vocab=1000), "sizes": (8, 32),
        "base": _if_unet((32, 64), 1, attention=1, head_dim=8, text_dim=32, pool_heads=2, sr=False, size=8),
        "sr": _if_unet((32, 64), 1, attention=1, head_dim=8, text_dim=32, pool_heads=2, sr=True, size=32),
        "upscaler": _upscaler(_clip(32, 64, 2, 4, vocab=1000), (32, 64), (16, 16, 16), layers=1, groups=8),
        "steps": (2, 2, 2), "stages": 3,
    },
    "small": {  # the CPU bench: a shorter cascade (base 32x32, super-resolution to 128x128) at reduced widths
        "t5": _t5(256, 1024, 4, 4, vocab=8192), "sizes": (32, 128),
        "base": _if_unet((64, 128, 256), 1, attention=2, head_dim=32, text_dim=256, pool_heads=4, sr=False, size=32),
        # attention at 32x32 and 16x16, as IF-II
        "sr": _if_unet((32, 64, 128, 128), 1, attention=2, head_dim=32, text_dim=256, pool_heads=2, sr=True, size=128),
        "upscaler": _upscaler(_clip(256, 1024, 4, 4, vocab=8192), (64, 128), (32, 64, 64), layers=1, groups=32),
        "steps": (10, 5, 5), "stages": 2,
    },
    # The released layout.  T5: t5-v1_1-xxl's encoder (convert_if.py loads google/t5-v1_1-xxl).  The UNets' layout is
    # read from convert_if.py: IF-I's attention_resolutions 32,16,8 at 64x64 (attention at three of four levels),
    # 64-channel heads (num_head_channels), 64 pooling heads over the 4096-wide T5 text; IF-II's five levels of
    # 2, 2, 3, 5, 5 residual blocks (its verify_param_count block slices), cross-attention at its two lowest
    # levels.  The released configs' widths are not public outside the gated checkpoints: the widths below are
    # fitted so that the UNets have the model cards' sizes (IF-I-XL 4.3B: 4.10B here; IF-II-L 1.2B: 1.19B here).
    # Stage III is stabilityai/stable-diffusion-x4-upscaler's layout (OpenCLIP-H text encoder, 4-level UNet, VAE).
    "if": {
        "t5": _t5(4096, 10240, 24, 64), "sizes": (64, 256),
        "base": _if_unet((704, 1408, 2112, 2816), 3, attention=3, head_dim=64, text_dim=4096, pool_heads=64, sr=False,
                         size=64),
        "sr": _if_unet((192, 384, 768, 1152, 1152), (2, 2, 3, 5, 5), attention=2, head_dim=64, text_dim=4096,
                       pool_heads=64, sr=True, size=256),
        "upscaler": _upscaler(_clip(1024, 4096, 23, 16, vocab=49408), (256, 512, 512, 1024), (128, 256, 512), layers=2,
                              groups=32, down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * 3,
                              up_block_types=("CrossAttnUpBlock2D",) * 3 + ("UpBlock2D",)),
        "steps": (100, 50, 75), "stages": 3, "meta": True,
    },
}
