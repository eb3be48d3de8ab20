"""imagen/t-i on the tiny preset: the cascade stage by stage against diffusers' own IF pipelines and the x4
upscaler's, guidance batched and sequential, checkpoint folders, bad input, optimizations, sequence lengths."""

from __future__ import annotations

import functools

import genaccel_imagen
import pytest
import torch
from genaccel.errors import GenaccelError
from genaccel.testing import attention_record, first_batch, measure, one_line_error, prepared, registry_fixture, tiny

WORKLOAD = "imagen/t-i"


registry = registry_fixture(genaccel_imagen)
config = functools.partial(tiny, WORKLOAD)


@pytest.fixture(scope="module")
def base(registry):
    return first_batch(registry, config())


def pipelines(inst):
    from diffusers import IFPipeline, IFSuperResolutionPipeline, StableDiffusionUpscalePipeline
    from genaccel.api import make_scheduler

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


def test_matches_diffusers_pipelines_stage_by_stage(base):
    ctx, batch, result = base
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


def test_cfg_equals_cfg_sequential(registry, base):
    _, _, batched = base
    _, _, sequential = first_batch(registry, config(decoder="cfg-sequential"))
    for a, b in zip(batched.extra["stages"], sequential.extra["stages"]):
        assert torch.allclose(a, b, atol=1e-4)  # batch 2B against two of B: float rounding only
    assert (batched.weight_passes, sequential.weight_passes) == (1, 2)


def test_diffusers_pipeline_decoder_is_the_reference(registry):
    _, _, ours = first_batch(registry, config(optimizations=("sdpa",)))
    _, _, theirs = first_batch(registry, config(decoder="diffusers-pipeline"))
    for a, b in zip(ours.extra["stages"], theirs.extra["stages"]):
        assert torch.allclose(a, b, atol=1e-4)
    assert set(theirs.records[0]["phases"]) >= {"stage I", "stage II", "stage III"}


def test_ddpm_is_the_stages_default(registry, base):
    _, _, default = base
    _, _, ddpm = first_batch(registry, config(options={"scheduler": "ddpm", "stages": 2}))
    assert len(ddpm.extra["stages"]) == 2
    for a, b in zip(default.extra["stages"], ddpm.extra["stages"]):
        assert torch.equal(a, b)
    # DDIM has no learned variance: the pipeline and our loop drop the predicted one alike
    _, _, ddim = first_batch(registry, config(optimizations=("sdpa",), options={"scheduler": "ddim", "stages": 1}))
    _, _, theirs = first_batch(registry, config(decoder="diffusers-pipeline", options={"scheduler": "ddim", "stages": 1}))
    assert torch.allclose(ddim.extra["media"], theirs.extra["media"], atol=1e-4)
    assert not torch.allclose(default.extra["stages"][0], ddim.extra["media"], atol=1e-3)


def save_checkpoint(inst, path):
    p1, p2, p3 = pipelines(inst)
    p1.save_pretrained(path / "stage_1")
    p2.save_pretrained(path / "stage_2")
    p3.save_pretrained(path / "stage_3")


def test_checkpoint_round_trip(registry, base, tmp_path):
    ctx, _, preset = base
    save_checkpoint(ctx.instance, tmp_path)
    # a checkpoint's defaults are the release's steps; ask for the preset's so the images compare
    ctx2, _, loaded = first_batch(registry, config(preset=None, checkpoint=str(tmp_path),
                               options={"num_inference_steps": 2, "sr_steps": 2, "upscaler_steps": 2}))
    assert not ctx2.instance.random_weights and [s.size for s in ctx2.instance.stages] == [8, 32, 128]
    for a, b in zip(preset.extra["stages"], loaded.extra["stages"]):
        assert torch.allclose(a, b, atol=1e-5)


def test_missing_cascade_stage(registry, tmp_path):
    ctx, _, _ = first_batch(registry, config(options={"stages": 1}))
    p1, _, _ = pipelines(ctx.instance)
    p1.save_pretrained(tmp_path / "stage_1")
    with pytest.raises(GenaccelError) as e:
        prepared(registry, config(preset=None, checkpoint=str(tmp_path)))
    assert "lacks the cascade stage(s) stage_2" in str(e.value) and "\n" not in str(e.value)


def test_super_resolution_given_the_wrong_input_size(registry, monkeypatch):
    from genaccel_imagen import presets

    small = presets.PRESETS["tiny"]
    monkeypatch.setitem(presets.PRESETS, "tiny", {**small, "sizes": (8, 64)})  # a 64x64 stage II expects 16x16 input
    with pytest.raises(GenaccelError) as e:
        prepared(registry, config())
    assert str(e.value) == "stage II (sr) takes 16x16 images but stage I makes 8x8"
    monkeypatch.setitem(presets.PRESETS, "tiny", small)
    ctx = prepared(registry, config())
    with pytest.raises(GenaccelError, match=r"stage II \(sr\) takes 8x8 images, got 16x16"):
        ctx.instance.check_input(ctx.instance.stages[1], torch.zeros(1, 3, 16, 16), 1)


@pytest.mark.parametrize("options, message", [
    ({"scheduler": "lms"}, "--scheduler must be one of ddim, pndm, dpm-solver, euler, ddpm, got 'lms'"),
    ({"num_inference_steps": 0}, "--num-inference-steps must be >= 1, got 0"),
    ({"sr_steps": 0}, "--sr-steps must be >= 1, got 0"),
    ({"stages": 4}, "--stages must be >= 1 and <= 3, got 4"),
])
def test_bad_input(registry, options, message):
    assert message in one_line_error(first_batch, registry, config(options=options))


def psnr(a, b) -> float:
    mse = float(((a - b) ** 2).mean())
    return float("inf") if mse == 0 else 10 * torch.log10(torch.tensor(1.0 / mse)).item()


def test_lossless_and_lossy_stacks(registry, base, tmp_path):
    _, _, base = base
    _, _, fast = first_batch(registry, config(optimizations=("sdpa", "channels-last")))
    for a, b in zip(base.extra["stages"], fast.extra["stages"]):
        assert torch.allclose(a, b, atol=1e-3)
    _, _, lossy = first_batch(registry, config(optimizations=("int8-dynamic",)))
    quality = psnr(base.extra["media"], lossy.extra["media"])
    assert 10 < quality < float("inf")  # changed, but the same image
    case = measure(registry, config(optimizations=("sdpa",), out_dir=str(tmp_path), warmup=0), progress=False).to_dict()
    assert case["status"] == "ok" and all(case["summary"]["phase_s"][p] > 0 for p in ("stage I", "stage II", "stage III"))
    files = [f for s in case["samples"] for f in s["files"]]
    assert len(files) == 6 and all(f.endswith(".png") for f in files)  # a PNG per stage and sample


def test_sequence_lengths_per_stage(registry):
    """One step of each stage, stage after stage (the record's period)."""
    rec = attention_record(registry, config())
    stages = {}
    for c in rec["calls"]:
        stages.setdefault(c["module"].split(".")[0], []).append(c)
    assert list(stages) == ["unet_1", "unet_2", "unet_3"]  # in call order
    # tiny: two levels, self-attention only at the second level and the mid block; stage II works at 4x stage I's side
    assert {c["query_len"] for c in stages["unet_1"]} == {16}
    assert max(c["query_len"] for c in stages["unet_2"]) == max(c["query_len"] for c in stages["unet_3"]) == 256
    # IF attends over its positions and the text at once
    assert {(c["kind"], c["key_len"]) for c in stages["unet_1"]} == {("spatial", 16 + 77)}
    assert {(c["kind"], c["key_len"]) for c in stages["unet_2"]} == {("cross", 77)}  # IF-II: the text only
    assert {c["key_len"] for c in stages["unet_3"] if c["kind"] == "cross"} == {77}


def test_if_preset_has_the_released_sizes():
    """The ``if`` preset's UNets, built on the meta device (no memory, seconds), have the model cards' sizes:
    IF-I-XL 4.3B and IF-II-L 1.2B parameters, within 10% (the widths are fitted to them; see the preset)."""
    from diffusers import UNet2DConditionModel
    from genaccel_imagen.presets import PRESETS

    def count(config):
        with torch.device("meta"):
            return sum(p.numel() for p in UNet2DConditionModel(**config).parameters())

    base, sr = count(PRESETS["if"]["base"]), count(PRESETS["if"]["sr"])
    assert abs(base / 4.3e9 - 1) < 0.10, base
    assert abs(sr / 1.2e9 - 1) < 0.10, sr
