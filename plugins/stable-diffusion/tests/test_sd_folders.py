"""stable-diffusion/t-i on pipeline folders past SD 1.x: a tiny SD 2.x folder (v-prediction, an
OpenCLIP-style GELU text encoder, linear-projection attention) and a tiny SDXL folder (two text
encoders, pooled embeddings, added time ids), each saved with ``save_pretrained``; genaccel's images
equal the folder's own diffusers pipeline on the same seeds and scheduler.  Bad folders: one line."""

from __future__ import annotations

import functools
import json
import shutil

import genaccel_stable_diffusion
import pytest
import torch
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    EulerDiscreteScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from genaccel.api import clip_style_tokenizer
from genaccel.testing import first_batch, one_line_error, prepared, registry_fixture, tiny
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

registry = registry_fixture(genaccel_stable_diffusion)
config = functools.partial(tiny, "stable-diffusion/t-i", preset=None)
BETAS = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear"}
XL_TIME_DIM, XL_PROJECTION = 8, 16


def _text_config(hidden: int, **extra) -> CLIPTextConfig:
    return CLIPTextConfig(vocab_size=1000, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                          num_attention_heads=4, max_position_embeddings=77, hidden_act="gelu", bos_token_id=0,
                          eos_token_id=1, pad_token_id=1, **extra)


def _unet(cross: int, **extra) -> UNet2DConditionModel:
    """Two levels at 8x8 latents, SD 2.x's per-level head dims and linear projections."""
    return UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(32, 64),
                                layers_per_block=1, norm_num_groups=8, cross_attention_dim=cross,
                                attention_head_dim=(2, 4), use_linear_projection=True,
                                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), **extra)


def _vae() -> AutoencoderKL:
    return AutoencoderKL(block_out_channels=(16, 16), layers_per_block=1, norm_num_groups=8, latent_channels=4,
                         sample_size=16, down_block_types=("DownEncoderBlock2D",) * 2,
                         up_block_types=("UpDecoderBlock2D",) * 2)


@pytest.fixture(scope="module")
def sd2_folder(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("sd2")
    scheduler = DDIMScheduler(**BETAS, prediction_type="v_prediction", clip_sample=False, set_alpha_to_one=False,
                              steps_offset=1)
    StableDiffusionPipeline(vae=_vae(), text_encoder=CLIPTextModel(_text_config(32)), tokenizer=clip_style_tokenizer(1000),
                            unet=_unet(32, upcast_attention=True), scheduler=scheduler, safety_checker=None,
                            feature_extractor=None, requires_safety_checker=False).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def xl_folder(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("sdxl")
    unet = _unet(64, addition_embed_type="text_time", addition_time_embed_dim=XL_TIME_DIM,
                 projection_class_embeddings_input_dim=XL_TIME_DIM * 6 + XL_PROJECTION,
                 transformer_layers_per_block=(1, 2))
    StableDiffusionXLPipeline(vae=_vae(), text_encoder=CLIPTextModel(_text_config(32)),
                              text_encoder_2=CLIPTextModelWithProjection(_text_config(32, projection_dim=XL_PROJECTION)),
                              tokenizer=clip_style_tokenizer(1000), tokenizer_2=clip_style_tokenizer(1000), unet=unet,
                              scheduler=EulerDiscreteScheduler(**BETAS, steps_offset=1), add_watermarker=False,
                              ).save_pretrained(path)
    return path


def _theirs(pipe, batch, inst, scheduler_class=None, **kwargs):
    """The folder's own pipeline (its scheduler, or ``scheduler_class`` from its config, diffusers' way)
    on the batch's prompts and seeds."""
    if scheduler_class is not None:
        pipe.scheduler = scheduler_class.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe([s.prompt for s in batch], height=inst.image_size, width=inst.image_size, output_type="np",
                generator=[torch.Generator().manual_seed(s.seed) for s in batch], **kwargs).images


@pytest.mark.parametrize("scheduler, scheduler_class", [("ddim", None), ("euler", EulerDiscreteScheduler)])
def test_sd2_v_prediction_equals_the_pipeline(registry, sd2_folder, scheduler, scheduler_class):
    ctx, batch, result = first_batch(registry, config(checkpoint=str(sd2_folder),
                                                      options={"scheduler": scheduler, "num_inference_steps": 3}))
    inst = ctx.instance
    assert inst.scheduler_config["prediction_type"] == "v_prediction" and inst.image_size == 16
    pipe = StableDiffusionPipeline.from_pretrained(sd2_folder, safety_checker=None, requires_safety_checker=False)
    assert pipe.scheduler.config.prediction_type == "v_prediction"
    theirs = _theirs(pipe, batch, inst, scheduler_class, num_inference_steps=3, guidance_scale=7.5)
    ours = result.extra["media"].numpy()
    assert ours.shape == theirs.shape == (2, 16, 16, 3) and ours.std() > 0.01
    assert abs(ours - theirs).max() < 1e-4


@pytest.mark.parametrize("force_zeros", [True, False])
def test_sdxl_equals_the_pipeline(registry, xl_folder, tmp_path, force_zeros):
    folder = tmp_path / "xl"
    shutil.copytree(xl_folder, folder)
    index = json.loads((folder / "model_index.json").read_text())
    (folder / "model_index.json").write_text(json.dumps({**index, "force_zeros_for_empty_prompt": force_zeros}))
    ctx, batch, result = first_batch(registry, config(checkpoint=str(folder), options={"num_inference_steps": 3}))
    inst = ctx.instance
    assert type(inst).__name__ == "StableDiffusionXL" and inst.image_size == 16
    assert inst.denoise_defaults == {"scheduler": "euler", "num_inference_steps": 50, "guidance_scale": 5.0}
    pipe = StableDiffusionXLPipeline.from_pretrained(folder, add_watermarker=False)
    assert pipe.config.force_zeros_for_empty_prompt is force_zeros
    theirs = _theirs(pipe, batch, inst, num_inference_steps=3)  # its Euler scheduler and guidance scale 5.0
    ours = result.extra["media"].numpy()
    assert ours.shape == theirs.shape == (2, 16, 16, 3) and ours.std() > 0.01
    assert abs(ours - theirs).max() < 1e-4


def test_sdxl_reference_decoder_and_step_cache(registry, xl_folder):
    """diffusers-pipeline (the reference) builds SDXL's pipeline; the step cache's full passes add the time ids."""
    run = functools.partial(config, checkpoint=str(xl_folder))
    _, _, ours = first_batch(registry, run(options={"num_inference_steps": 2}))
    _, _, reference = first_batch(registry, run(decoder="diffusers-pipeline", options={"num_inference_steps": 2}))
    _, _, cached = first_batch(registry, run(optimizations=("deepcache",),
                                             options={"num_inference_steps": 2, "cache_interval": 1}))
    assert reference.extra["denoise"]["pipeline"] == "StableDiffusionXLPipeline"
    assert torch.allclose(ours.extra["media"], reference.extra["media"], atol=1e-4)
    assert torch.allclose(ours.extra["media"], cached.extra["media"], atol=1e-5)


def test_unsupported_pipeline_class(registry, tmp_path):
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "KandinskyPipeline"}))
    message = one_line_error(prepared, registry, config(checkpoint=str(tmp_path)))
    assert message.endswith("holds a KandinskyPipeline; supported pipelines: StableDiffusionPipeline, "
                            "StableDiffusionXLPipeline")


def test_sdxl_folder_without_its_second_text_encoder(registry, xl_folder, tmp_path):
    folder = tmp_path / "xl"
    shutil.copytree(xl_folder, folder, ignore=shutil.ignore_patterns("text_encoder_2"))
    message = one_line_error(prepared, registry, config(checkpoint=str(folder)))
    assert message.endswith("lacks the folder(s) text_encoder_2")
