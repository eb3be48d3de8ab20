"""stable-diffusion/t-i's SDXL presets: ``xl-tiny`` gives diffusers' ``StableDiffusionXLPipeline``'s images
on the same weights, seeds and scheduler (built here, and as the ``diffusers-pipeline`` reference), and
``sdxl-1.0`` has the released base model's architecture and parameter counts on the meta device."""

from __future__ import annotations

import functools

import genaccel_stable_diffusion
import torch
from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
from genaccel.api import part_modules
from genaccel.testing import first_batch, registry_fixture, tiny
from genaccel_stable_diffusion.presets import PRESETS, XL_SCHEDULER

registry = registry_fixture(genaccel_stable_diffusion)
config = functools.partial(tiny, "stable-diffusion/t-i", preset="xl-tiny")


def test_xl_tiny_equals_the_pipeline(registry):
    ctx, batch, result = first_batch(registry, config(options={"num_inference_steps": 3}))
    inst = ctx.instance
    assert type(inst).__name__ == "StableDiffusionXL" and inst.force_zeros and inst.random_weights
    assert inst.denoise_defaults == {"scheduler": "euler", "num_inference_steps": 2, "guidance_scale": 5.0}
    pipe = StableDiffusionXLPipeline(vae=inst.vae, text_encoder=inst.text_encoder, text_encoder_2=inst.text_encoder_2,
                                     tokenizer=inst.tokenizer, tokenizer_2=inst.tokenizer_2, unet=inst.unet,
                                     scheduler=EulerDiscreteScheduler.from_config(XL_SCHEDULER),
                                     force_zeros_for_empty_prompt=True, add_watermarker=False)
    pipe.set_progress_bar_config(disable=True)
    theirs = pipe([s.prompt for s in batch], num_inference_steps=3, height=64, width=64, output_type="np",
                  generator=[torch.Generator().manual_seed(s.seed) for s in batch]).images  # guidance 5.0
    ours = result.extra["media"].numpy()
    assert ours.shape == theirs.shape == (2, 64, 64, 3) and ours.std() > 0.01
    assert abs(ours - theirs).max() < 1e-4


def test_xl_tiny_reference_decoder(registry):
    """The reference (decoder ``diffusers-pipeline``, what ``ablate`` runs) is SDXL's pipeline, with our images."""
    _, _, ours = first_batch(registry, config())
    _, _, reference = first_batch(registry, config(decoder="diffusers-pipeline"))
    assert reference.extra["denoise"]["pipeline"] == "StableDiffusionXLPipeline"
    assert reference.extra["denoise"]["scheduler"] == "euler"
    assert torch.allclose(ours.extra["media"], reference.extra["media"], atol=1e-4)


def test_sdxl_preset_has_the_released_sizes():
    """SDXL base 1.0's folder configs (UNet, CLIP ViT-L, OpenCLIP bigG with projection, VAE), counted on the
    meta device as the preset is built: UNet 2.57B, text encoders 123M and 695M, VAE 83.7M."""
    with torch.device("meta"):
        modules = part_modules(PRESETS["sdxl-1.0"], UNet2DConditionModel)
    unet = modules["unet"].config
    assert (unet.sample_size, tuple(unet.block_out_channels), tuple(unet.transformer_layers_per_block)) == (
        128, (320, 640, 1280), (1, 2, 10))
    assert (unet.cross_attention_dim, tuple(unet.attention_head_dim), unet.addition_time_embed_dim) == (
        2048, (5, 10, 20), 256)
    assert unet.projection_class_embeddings_input_dim == 2816 and unet.use_linear_projection
    assert tuple(unet.down_block_types) == ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D")
    text_2 = modules["text_encoder_2"].config
    assert (text_2.hidden_size, text_2.num_hidden_layers, text_2.hidden_act, text_2.projection_dim) == (
        1280, 32, "gelu", 1280)
    assert modules["vae"].config.scaling_factor == 0.13025
    sizes = {name: sum(p.numel() for p in m.parameters()) for name, m in modules.items()}
    assert sizes == {"text_encoder": 123_060_480, "unet": 2_567_463_684, "vae": 83_653_863,
                     "text_encoder_2": 694_659_840}
