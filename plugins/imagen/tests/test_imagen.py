"""imagen/t-i on the tiny preset: the cascade stage by stage against diffusers' own IF pipelines and the x4
upscaler's, guidance batched and sequential, checkpoint folders, bad input, optimizations, sequence lengths."""

from __future__ import annotations

import attrs
import genaccel_imagen
import pytest
import torch
from genaccel.plugins import build_registry, make_plugin_manager
from genaccel.runner import RunConfig, make_batches, prepare

WORKLOAD = "imagen/t-i"


@pytest.fixture(scope="module")
def registry():
    pm = make_plugin_manager(load_entry_points=False)
    pm.register(genaccel_imagen, name="imagen")
    return build_registry(pm)


def config(**fields) -> RunConfig:
    options = fields.pop("options", {})
    base = RunConfig(workload=WORKLOAD, **{"preset": "tiny", "samples": 2, "batch_size": 2, **fields})
    return attrs.evolve(base, options=options)


def generate(registry, **fields):
    ctx = prepare(registry, config(**fields))
    batch = make_batches(ctx)[0]
    return ctx, batch, ctx.decoder.run(ctx, batch)


def pipelines(inst):
    from diffusers import IFPipeline, IFSuperResolutionPipeline, StableDiffusionUpscalePipeline
    from genaccel_imagen.workload import make_scheduler

    s1, s2, s3 = inst.stages
    p1 = IFPipeline(tokenizer=inst.tokenizer, text_encoder=inst.text_encoder, unet=s1.unet,
                    scheduler=make_scheduler("ddpm", s1.scheduler_config), safety_checker=None,
                    feature_extractor=None, watermarker=None, requires_safety_checker=False)
    p2 = IFSuperResolutionPipeline(tokenizer=inst.tokenizer, text_encoder=inst.text_encoder, unet=s2.unet,
                                   scheduler=make_scheduler("ddpm", s2.scheduler_config),
                                   image_noising_scheduler=make_scheduler("ddpm", s2.noising_config),
                                   safety_checker=None, feature_extractor=None, watermarker=None,
                                   requires_safety_checker=False)
    p3 = StableDiffusionUpscalePipeline(vae=s3.vae, text_encoder=s3.text_encoder, tokenizer=s3.tokenizer, unet=s3.unet,
                                        low_res_scheduler=make_scheduler("ddpm", s3.noising_config),
                                        scheduler=make_scheduler("ddim", s3.scheduler_config), max_noise_level=350)
    for p in (p1, p2, p3):
        p.set_progress_bar_config(disable=True)
    return p1, p2, p3


def test_matches_diffusers_pipelines_stage_by_stage(registry):
    ctx, batch, result = generate(registry)
    inst = ctx.instance
    p1, p2, p3 = pipelines(inst)
    prompts = [s.prompt for s in batch]

    def gens(stage):
        return [torch.Generator().manual_seed(s.seed + 7919 * stage) for s in batch]

    ours = result.extra["stages"]
    img1 = p1(prompts, num_inference_steps=2, guidance_scale=7.0, height=8, width=8, generator=gens(0),
              output_type="pt", clean_caption=False).images
    assert torch.allclose((img1 / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1), ours[0], atol=1e-5)
    img2 = p2(prompts, image=img1, num_inference_steps=2, guidance_scale=7.0, height=32, width=32, noise_level=250,
              generator=gens(1), output_type="pt", clean_caption=False).images
    assert torch.allclose((img2 / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1), ours[1], atol=1e-5)
    img3 = p3(prompts, image=img2, num_inference_steps=2, guidance_scale=7.0, noise_level=100, generator=gens(2),
              output_type="np").images
    assert img3.shape == (2, 128, 128, 3) and abs(ours[2].numpy() - img3).max() < 1e-4
    rec = result.records[0]
    assert set(rec["phases"]) == {"text encoder", "stage I", "stage II", "stage III"}
    assert rec["steps"] == result.decode_steps == len(result.step_s) == 6
    assert ours[2].std() > 0.01
