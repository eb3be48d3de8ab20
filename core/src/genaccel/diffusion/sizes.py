"""The parts of a latent-diffusion workload below its released size: SD 1.5's layout (a CLIP text encoder, a UNet
whose levels but the lowest cross-attend to the text, a VAE) at reduced widths, as the ``text``, ``unet`` and ``vae``
fields that :func:`genaccel.diffusion.parts.part_configs` reads.  Stable Diffusion and the text-to-video UNet3D
(ModelScope's, SD's layout with temporal layers) share them.  Plain data (no torch): presets read it at
registration."""

from __future__ import annotations

_REDUCED = {
    "tiny": (  # tests: seconds
        {"vocab_size": 1000, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4},
        {"block_out_channels": (32, 64, 64), "layers_per_block": 1, "cross_attention_dim": 32, "attention_head_dim": 8,
         "norm_num_groups": 8},
        {"block_out_channels": (16, 16, 16, 16), "layers_per_block": 1, "norm_num_groups": 8},
    ),
    "small": (  # the CPU bench
        {"vocab_size": 8192, "hidden_size": 512, "intermediate_size": 2048, "num_hidden_layers": 6,
         "num_attention_heads": 8},
        {"block_out_channels": (64, 128, 256, 256), "layers_per_block": 2, "cross_attention_dim": 512,
         "attention_head_dim": 8, "norm_num_groups": 32},
        {"block_out_channels": (32, 64, 128, 128), "layers_per_block": 2, "norm_num_groups": 32},
    ),
}


def reduced_parts(size: str, *, blocks: str = "2D") -> dict:
    """The ``text``, ``unet`` and ``vae`` fields of a ``tiny`` or ``small`` latent-diffusion preset (fresh dicts);
    ``blocks`` names the UNet's block types: ``"2D"`` (``UNet2DConditionModel``) or ``"3D"`` (``UNet3DConditionModel``)."""
    text, unet, vae = _REDUCED[size]
    below = len(unet["block_out_channels"]) - 1  # levels with cross-attention: all but the lowest
    unet = {**unet, "down_block_types": (f"CrossAttnDownBlock{blocks}",) * below + (f"DownBlock{blocks}",),
            "up_block_types": (f"UpBlock{blocks}",) + (f"CrossAttnUpBlock{blocks}",) * below}
    return {"text": dict(text), "unet": unet, "vae": dict(vae)}
