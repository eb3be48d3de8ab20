"""make-a-video/t-v on the tiny preset: our loop against diffusers' TextToVideoSDPipeline, guidance
batched and sequential, the checkpoint folder round trip, bad input, GIF outputs, attention profile."""

from __future__ import annotations

import functools

import genaccel_make_a_video
import pytest
import torch
from genaccel.api import attention_profile, make_scheduler
from genaccel.testing import first_batch, measure, one_line_error, prepared, registry_fixture, tiny

WORKLOAD = "make-a-video/t-v"


registry = registry_fixture(genaccel_make_a_video)
config = functools.partial(tiny, WORKLOAD)


def pipeline(inst, scheduler):
    from diffusers import TextToVideoSDPipeline

    pipe = TextToVideoSDPipeline(vae=inst.vae, text_encoder=inst.text_encoder, tokenizer=inst.tokenizer,
                                 unet=inst.unet, scheduler=make_scheduler(scheduler, inst.scheduler_config))
    pipe.set_progress_bar_config(disable=True)
    return pipe


# euler is left out: diffusers' video pipeline reshapes latents to (B*F, ...) before scheduler.step,
# and Euler's step draws noise per generator row, so it cannot take one generator per sample
@pytest.mark.parametrize("scheduler", ["ddim", "pndm", "dpm-solver"])
def test_matches_diffusers_pipeline(registry, scheduler):
    ctx, batch, result = first_batch(registry, config(options={"scheduler": scheduler, "num_inference_steps": 3}))
    inst = ctx.instance
    theirs = pipeline(inst, scheduler)(
        [s.prompt for s in batch], num_inference_steps=3, guidance_scale=9.0, height=64, width=64, num_frames=4,
        generator=[torch.Generator().manual_seed(s.seed) for s in batch], output_type="np").frames
    ours = result.extra["media"].numpy()
    assert ours.shape == theirs.shape == (2, 4, 64, 64, 3)
    assert abs(ours - theirs).max() < 1e-4
    assert ours.std() > 0.01
    assert result.records[0]["units"] == 4


def test_cfg_equals_cfg_sequential(registry):
    _, _, batched = first_batch(registry, config(decoder="cfg", options={"frames": 3}))
    _, _, sequential = first_batch(registry, config(decoder="cfg-sequential", options={"frames": 3}))
    assert batched.extra["media"].shape[1] == 3
    assert torch.allclose(batched.extra["media"], sequential.extra["media"], atol=1e-5)


def test_checkpoint_round_trip_and_gif(registry, tmp_path):
    from PIL import Image

    ctx, _, preset = first_batch(registry, config())
    inst = ctx.instance
    pipeline(inst, "ddim").save_pretrained(tmp_path / "ckpt")
    case = measure(registry, config(preset=None, checkpoint=str(tmp_path / "ckpt"), out_dir=str(tmp_path / "out"),
                                     warmup=0, options={"frames": 4, "num_inference_steps": 2}), progress=False).to_dict()
    assert case["status"] == "ok"
    sample = case["samples"][0]
    assert sample["units"] == sample["frames"] == 4 and len(sample["files"]) == 5
    gif = Image.open(sample["files"][0])
    assert gif.n_frames == 4 and gif.size == (64, 64)
    ctx2, _, loaded = first_batch(registry, config(preset=None, checkpoint=str(tmp_path / "ckpt"),
                               options={"frames": 4, "num_inference_steps": 2}))
    assert torch.allclose(preset.extra["media"], loaded.extra["media"], atol=1e-5)


@pytest.mark.parametrize("options, message", [
    ({"scheduler": "unipc"}, "--scheduler must be one of ddim, pndm, dpm-solver, euler, ddpm, got 'unipc'"),
    ({"num_inference_steps": -1}, "--num-inference-steps must be >= 1, got -1"),
    ({"image_size": 68}, "--image-size must be a positive multiple of 8"),
    ({"frames": 0}, "--frames must be >= 1, got 0"),
])
def test_bad_input(registry, options, message):
    assert message in one_line_error(first_batch, registry, config(options=options))


def test_attention_profile_temporal_vs_spatial(registry):
    ctx = prepared(registry, config(options={"frames": 8}))
    s = attention_profile(ctx.instance, steps=1)["summary"]
    kinds = s["kinds"]
    assert kinds["temporal"]["calls"] > 0 and kinds["spatial"]["calls"] > 0
    temporal = [c for c in attention_profile(ctx.instance, steps=1)["calls"] if c["kind"] == "temporal"]
    assert {c["query_len"] for c in temporal} == {8}  # temporal attention runs over the frames
    assert s["temporal_over_spatial_flops"] > 0 and s["temporal_over_spatial_seconds"] > 0


def test_released_preset_size():
    from diffusers import AutoencoderKL, UNet3DConditionModel
    from genaccel.api import part_configs
    from genaccel_make_a_video.workload import PRESETS
    from transformers import CLIPTextModel

    text, unet, vae = part_configs(PRESETS["1.7b"])
    with torch.device("meta"):
        sizes = [sum(p.numel() for p in m.parameters())
                 for m in (CLIPTextModel(text), UNet3DConditionModel(**unet), AutoencoderKL(**vae))]
    assert 1.6e9 < sum(sizes) < 1.9e9, sizes


def test_optimizations_keep_the_video(registry):
    _, _, base = first_batch(registry, config())
    ctx, _, fast = first_batch(registry, config(optimizations=("sdpa", "fused-qkv", "channels-last", "cuda-graph")))
    assert [s.name for s in ctx.stack.skipped] == ["cuda-graph"]  # CUDA only: a recorded skip on CPU
    assert torch.allclose(base.extra["media"], fast.extra["media"], atol=1e-3)


@pytest.mark.parametrize("stack", [("sdpa",), ("sdpa", "fused-qkv")])
def test_cross_attention_projects_the_text_once_per_video(registry, stack):
    """With SDPA the 3-D UNet's cross-attention projects each video's text once for all its frames (its
    spatial layers see the frames as rows, each with the video's text repeated); the UNet's prediction
    equals that of diffusers' own SDPA processor, which projects the text once per frame."""
    from diffusers.models.attention_processor import AttnProcessor2_0, FusedAttnProcessor2_0

    inst = prepared(registry, config(optimizations=stack)).instance
    gen = torch.Generator().manual_seed(0)
    latents = torch.randn(inst.latent_shape(2), generator=gen)
    text = torch.randn(2, 77, inst.unet.config.cross_attention_dim, generator=gen)
    cross = [m for m in inst.unet.modules() if getattr(m, "is_cross_attention", False)]
    projection = "to_kv" if "fused-qkv" in stack else "to_k"
    rows = []
    hooks = [getattr(m, projection).register_forward_hook(lambda mod, args, out: rows.append(args[0].shape[0]))
             for m in cross]
    with torch.no_grad():
        ours = inst.unet(latents, 10, encoder_hidden_states=text, return_dict=False)[0]
        assert rows and set(rows) == {2}  # one row of keys and values per video, not per frame
        rows.clear()
        inst.unet.set_attn_processor(FusedAttnProcessor2_0() if "fused-qkv" in stack else AttnProcessor2_0())
        theirs = inst.unet(latents, 10, encoder_hidden_states=text, return_dict=False)[0]
    for h in hooks:
        h.remove()
    assert set(rows) == {2 * inst.frames}
    assert ours.std() > 0.01
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
