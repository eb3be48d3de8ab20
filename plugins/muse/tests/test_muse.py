"""muse/t-i on the tiny preset: the token schedule step by step against diffusers' AmusedPipeline, guidance
batched and sequential, static shapes, the checkpoint folder round trip, bad input, optimizations."""

from __future__ import annotations

import functools
import math

import genaccel_muse
import pytest
import torch
from genaccel.testing import (
    attention_record,
    check_cfg_sequential,
    first_batch,
    measure,
    one_line_error,
    registry_fixture,
    tiny,
)

WORKLOAD = "muse/t-i"


registry = registry_fixture(genaccel_muse)
config = functools.partial(tiny, WORKLOAD)


def pipeline(inst):
    from diffusers import AmusedPipeline, AmusedScheduler

    pipe = AmusedPipeline(vqvae=inst.vqvae, tokenizer=inst.tokenizer, text_encoder=inst.text_encoder,
                          transformer=inst.transformer, scheduler=AmusedScheduler.from_config(inst.scheduler_config))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_matches_amused_pipeline_step_by_step(registry):
    ctx, batch, result = first_batch(registry, config())
    inst = ctx.instance
    seen = []
    out = pipeline(inst)([s.prompt for s in batch], num_inference_steps=4, guidance_scale=10.0,
                         generator=torch.Generator().manual_seed(batch[0].seed), output_type="np",
                         callback=lambda i, t, latents: seen.append(latents.clone()), callback_steps=1).images
    assert len(seen) == 4
    mask = inst.scheduler_config["mask_token_id"]
    assert [int((x == mask).sum()) // 2 for x in seen] == result.extra["parallel"]["masked_after_step"]
    assert torch.equal(seen[-1].cpu(), result.extra["tokens"])
    assert abs(result.extra["media"].numpy() - out).max() < 1e-5
    assert result.extra["parallel"]["masked_after_step"][-1] == 0  # every token decoded
    assert result.extra["parallel"]["static_shapes"]


def test_cfg_equals_cfg_sequential(registry):
    _, sequential = check_cfg_sequential(registry, config(), "tokens")
    assert sequential.extra["parallel"]["static_shapes"]


def test_checkpoint_round_trip(registry, tmp_path):
    ctx, _, preset = first_batch(registry, config())
    pipeline(ctx.instance).save_pretrained(tmp_path)
    ctx2, _, loaded = first_batch(registry, config(preset=None, checkpoint=str(tmp_path), options={"num_inference_steps": 4}))
    assert not ctx2.instance.random_weights
    assert torch.equal(preset.extra["tokens"], loaded.extra["tokens"])


@pytest.mark.parametrize("options, message", [
    ({"num_inference_steps": 0}, "--num-inference-steps must be"),
    ({"scheduler": "ddim"}, "--scheduler 'ddim' is not known to muse/t-i"),
])
def test_bad_input(registry, options, message):
    assert message in one_line_error(first_batch, registry, config(options=options))


def test_sdpa_is_lossless_and_run_case_writes_pngs(registry, tmp_path):
    _, _, base = first_batch(registry, config())
    _, _, fast = first_batch(registry, config(optimizations=("sdpa",)))
    assert torch.equal(base.extra["tokens"], fast.extra["tokens"])
    case = measure(registry, config(optimizations=("sdpa",), out_dir=str(tmp_path), warmup=0), progress=False).to_dict()
    assert case["status"] == "ok" and case["summary"]["phase_s"]["decode"] > 0
    files = [f for s in case["samples"] for f in s["files"]]
    assert len(files) == 2 and all(f.endswith(".png") for f in files)


def test_diffusers_pipeline_decoder_is_the_reference(registry):
    _, _, ours = first_batch(registry, config(optimizations=("sdpa",)))
    _, _, theirs = first_batch(registry, config(decoder="diffusers-pipeline"))
    assert abs(ours.extra["media"] - theirs.extra["media"]).max() < 1e-5


def test_lossy_stack_reports_quality(registry):
    _, _, base = first_batch(registry, config())
    _, _, lossy = first_batch(registry, config(optimizations=("int8-dynamic",)))
    mse = float(((base.extra["media"] - lossy.extra["media"]) ** 2).mean())
    psnr = float("inf") if mse == 0 else 10 * torch.log10(torch.tensor(1 / mse)).item()
    # a few tokens flip (measured: 1.6%, 33 dB); the image of another seed scores about 8 dB
    assert not torch.equal(base.extra["tokens"], lossy.extra["tokens"])
    assert math.isfinite(psnr) and psnr > 25
    assert lossy.extra["parallel"]["static_shapes"]


def test_sequence_length_is_constant(registry):
    """Parallel decoding attends over every image token at every step, masked or not: one query length, the
    8×8 grid's, at every call of a step (the self-attention's keys too), the cross-attention's keys the text."""
    rec = attention_record(registry, config())
    assert rec["period_options"] == {"num_inference_steps": 1}
    assert {c["query_len"] for c in rec["calls"]} == {8 * 8}
    assert {(c["kind"], c["key_len"]) for c in rec["calls"]} == {("self", 8 * 8), ("cross", 77)}


def test_amused_256_preset_has_the_released_sizes():
    """The ``amused-256`` preset built on the meta device (no memory, seconds): the U-ViT has aMUSEd's 603M
    parameters (within 1%), the whole model (CLIP-L/14 text encoder, U-ViT, VQ-GAN) its ~800M (within 10%)."""
    from diffusers import UVit2DModel, VQModel
    from genaccel_muse.workload import PRESETS
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    preset = PRESETS["amused-256"]

    def count(module):
        return sum(p.numel() for p in module.parameters())

    with torch.device("meta"):
        transformer = count(UVit2DModel(**preset["transformer"]))
        total = (transformer + count(VQModel(**preset["vq"]))
                 + count(CLIPTextModelWithProjection(CLIPTextConfig(**preset["text"]))))
    assert abs(transformer / 603e6 - 1) < 0.01, transformer
    assert abs(total / 800e6 - 1) < 0.10, total
