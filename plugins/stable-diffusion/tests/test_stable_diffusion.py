"""stable-diffusion/t-i on the tiny preset: our loop against diffusers' own pipeline, guidance
batched and sequential, the checkpoint folder round trip, bad input, optimizations, attention profile."""

from __future__ import annotations

import functools

import genaccel_stable_diffusion
import pytest
import torch
from genaccel.api import attention_profile, make_scheduler
from genaccel.errors import GenaccelError
from genaccel.testing import attention_record, first_batch, measure, one_line_error, prepared, registry_fixture, tiny

WORKLOAD = "stable-diffusion/t-i"


registry = registry_fixture(genaccel_stable_diffusion)
config = functools.partial(tiny, WORKLOAD)


@pytest.mark.parametrize("scheduler", ["ddim", "pndm", "dpm-solver", "euler", "ddpm"])
def test_matches_diffusers_pipeline(registry, scheduler):
    from diffusers import StableDiffusionPipeline

    ctx, batch, result = first_batch(registry, config(options={"scheduler": scheduler, "num_inference_steps": 3}))
    inst = ctx.instance
    pipe = StableDiffusionPipeline(vae=inst.vae, text_encoder=inst.text_encoder, tokenizer=inst.tokenizer, unet=inst.unet,
                                   scheduler=make_scheduler(scheduler, inst.scheduler_config), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    theirs = pipe([s.prompt for s in batch], num_inference_steps=3, guidance_scale=7.5, height=64, width=64,
                  generator=[torch.Generator().manual_seed(s.seed) for s in batch], output_type="np").images
    ours = result.extra["media"].numpy()
    assert ours.shape == theirs.shape == (2, 64, 64, 3)
    assert abs(ours - theirs).max() < 1e-4
    assert ours.std() > 0.01  # not a blank image
    rec = result.records[0]
    assert rec["units"] == 1 and rec["steps"] == result.decode_steps >= 3
    assert set(rec["phases"]) == {"text encoder", "denoise", "vae decode"}
    assert len(result.step_s) == result.decode_steps


def test_cfg_equals_cfg_sequential(registry):
    _, _, batched = first_batch(registry, config(decoder="cfg"))
    _, _, sequential = first_batch(registry, config(decoder="cfg-sequential"))
    assert torch.allclose(batched.extra["media"], sequential.extra["media"], atol=1e-5)
    assert (batched.weight_passes, sequential.weight_passes) == (1, 2)


def test_checkpoint_round_trip(registry, tmp_path):
    from diffusers import StableDiffusionPipeline

    ctx, _, preset = first_batch(registry, config())
    inst = ctx.instance
    StableDiffusionPipeline(vae=inst.vae, text_encoder=inst.text_encoder, tokenizer=inst.tokenizer, unet=inst.unet,
                            scheduler=make_scheduler("pndm", inst.scheduler_config), safety_checker=None,
                            feature_extractor=None, requires_safety_checker=False).save_pretrained(tmp_path)
    # a checkpoint's default is 50 steps; ask for the preset's so the images compare
    ctx2, _, loaded = first_batch(registry, config(preset=None, checkpoint=str(tmp_path),
                               options={"num_inference_steps": inst.denoise_defaults["num_inference_steps"]}))
    assert not ctx2.instance.random_weights and ctx2.instance.image_size == 64
    assert torch.allclose(preset.extra["media"], loaded.extra["media"], atol=1e-5)


@pytest.mark.parametrize("options, message", [
    ({"scheduler": "lms"}, "--scheduler must be one of ddim, pndm, dpm-solver, euler, ddpm, got 'lms'"),
    ({"num_inference_steps": 0}, "--num-inference-steps must be >= 1, got 0"),
    ({"image_size": 60}, "--image-size must be a positive multiple of 8"),
])
def test_bad_input(registry, options, message):
    assert message in one_line_error(first_batch, registry, config(options=options))


def test_bad_checkpoint(registry, tmp_path):
    with pytest.raises(GenaccelError, match="no model_index.json"):
        prepared(registry, config(preset=None, checkpoint=str(tmp_path)))


def test_run_case_with_optimizations(registry, tmp_path):
    _, _, base = first_batch(registry, config())
    _, _, fast = first_batch(registry, config(optimizations=("channels-last", "fused-qkv", "sdpa")))
    assert torch.allclose(base.extra["media"], fast.extra["media"], atol=1e-3)
    case = measure(registry, config(optimizations=("sdpa",), out_dir=str(tmp_path), warmup=0), progress=False).to_dict()
    assert case["status"] == "ok" and case["summary"]["phase_s"]["denoise"] > 0
    files = [f for s in case["samples"] for f in s["files"]]
    assert len(files) == 2 and all(f.endswith(".png") for f in files)


def test_attention_profile(registry):
    ctx = prepared(registry, config())
    profile = attention_profile(ctx.instance, steps=1)
    s = profile["summary"]
    # tiny UNet: self-attention at 8x8 and 4x4 latents going down, 2x2 in the mid block, back up: a U
    assert (s["max_seq_len"], s["min_seq_len"], s["seq_len_ratio"]) == (64, 4, 16.0)
    lens = [q for name, kind, q in s["profile"] if kind == "spatial"]
    middle = lens.index(4)
    assert lens[0] == lens[-1] == 64 and lens[:middle] == sorted(lens[:middle], reverse=True)
    assert lens[middle:] == sorted(lens[middle:])
    assert s["kinds"]["cross"]["calls"] > 0


def _stage_lengths(unet, side: int) -> list[int]:
    """The self-attention query lengths a UNet's stages imply for a ``side``×``side`` latent, in call order: each
    cross-attention down block's layers at its level's side, the mid block's at the lowest, each up block's
    (one layer more) back up."""
    cfg, lengths = unet.config, []
    levels, per_block = len(cfg.down_block_types), cfg.layers_per_block
    for level, kind in enumerate(cfg.down_block_types):
        lengths += [(side >> level) ** 2] * per_block * ("CrossAttn" in kind)
    lengths += [(side >> (levels - 1)) ** 2] * ("CrossAttn" in (cfg.mid_block_type or ""))
    for level, kind in zip(reversed(range(levels)), cfg.up_block_types):
        lengths += [(side >> level) ** 2] * (per_block + 1) * ("CrossAttn" in kind)
    return lengths


@pytest.mark.parametrize("image_size", [None, 128])
def test_attention_record_follows_the_unet_stages(registry, image_size):
    """One denoising step's record: the spatial self-attention lengths are those the latent size implies at each
    stage (a U), each followed by the cross-attention of the same positions to the 77 text tokens."""
    rec = attention_record(registry, config(), image_size=image_size)
    inst = prepared(registry, config(options={"image_size": image_size} if image_size else {})).instance
    side = inst.latent_shape(1)[-1]
    assert side == (image_size or 64) // 8
    spatial = [c for c in rec["calls"] if c["kind"] == "spatial"]
    cross = [c for c in rec["calls"] if c["kind"] == "cross"]
    assert [c["query_len"] for c in spatial] == _stage_lengths(inst.unet, side)
    assert all(c["key_len"] == c["query_len"] for c in spatial)
    assert [c["query_len"] for c in cross] == [c["query_len"] for c in spatial]
    assert {c["key_len"] for c in cross} == {77}
    assert [c["kind"] for c in rec["calls"]] == ["spatial", "cross"] * len(spatial)  # one step only
    assert rec["period_options"] == {"num_inference_steps": 1}


def test_sd15_preset_has_the_released_sizes():
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from genaccel.api import part_configs
    from genaccel_stable_diffusion.workload import PRESETS
    from transformers import CLIPTextModel

    text, unet, vae = part_configs(PRESETS["sd-1.5"])
    with torch.device("meta"):
        sizes = [sum(p.numel() for p in m.parameters())
                 for m in (CLIPTextModel(text), UNet2DConditionModel(**unet), AutoencoderKL(**vae))]
    assert [round(n / 1e6, 1) for n in sizes] == [123.1, 859.5, 83.7]


def test_meta_build_materializes(registry, monkeypatch):
    from genaccel_stable_diffusion import workload

    monkeypatch.setitem(workload.PRESETS, "tiny", {**workload.PRESETS["tiny"], "meta": True})
    _, _, result = first_batch(registry, config())
    assert torch.isfinite(result.extra["media"]).all() and result.extra["media"].std() > 0
