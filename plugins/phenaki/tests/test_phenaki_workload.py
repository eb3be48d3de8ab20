"""phenaki/t-v on the tiny preset through the core's parallel-decoding loop: the masked-token count after every
step and the re-masking temperatures follow MaskGIT's schedules, guidance batched equals sequential, the
optimizations keep the tokens, the checkpoint folder round trip, and bad input as one line with exit 2."""

from __future__ import annotations

import functools
import shutil

import genaccel_phenaki
import pytest
import torch
from genaccel.testing import check_cfg_sequential, cli, first_batch, measure, one_line_error, registry_fixture, tiny
from genaccel_phenaki.checkpoint import save_checkpoint

WORKLOAD = "phenaki/t-v"

registry = registry_fixture(genaccel_phenaki)
config = functools.partial(tiny, WORKLOAD)


# MaskGIT's cosine schedule, floor(L·cos(π/2·(i+1)/n)) in float32, at most one fewer than before, one at least
# until the last step, none after it: 48 tokens are (1+2)x4x4 (5 frames), 32 are (1+1)x4x4 (3 frames).  cos(π/3)
# in float32 is just below 1/2, so 32 and 16 tokens leave 15 and 7 masked there (MaskGIT and diffusers alike).
@pytest.mark.parametrize("frames, steps, counts", [
    (5, 4, [44, 33, 18, 0]),
    (3, 6, [30, 27, 22, 15, 8, 0]),
    (1, 3, [13, 7, 0]),
])
def test_masked_count_after_every_step_follows_the_schedule(registry, frames, steps, counts):
    ctx, _, result = first_batch(registry, config(options={"frames": frames, "num_inference_steps": steps}))
    parallel = result.extra["parallel"]
    assert parallel["masked_after_step"] == counts
    assert parallel["sequence_length"] == ctx.instance.tokens == (1 + (frames - 1) // 2) * 16
    assert parallel["static_shapes"] and parallel["guidance_scale"] == 13.0  # 1 + λ, λ = 12
    assert result.extra["media"].shape == (2, frames, 32, 32, 3)
    assert int(result.extra["tokens"].max()) < ctx.instance.preset.maskgit.codebook_size  # no [MASK] left


def test_remasking_temperature_is_annealed_to_zero(registry):
    """MaskGIT's choice temperature T·(1 − (i+1)/n) at step i (T = 8), as the scheduler draws it."""
    from diffusers import AmusedScheduler

    ctx, _, _ = first_batch(registry, config())
    scheduler = AmusedScheduler.from_config(ctx.instance.scheduler_config)
    for n in (1, 4, 12):
        scheduler.set_timesteps(n, ctx.instance.temperatures(n))
        expected = torch.tensor([8.0 * (1 - (i + 1) / n) for i in range(n)])
        torch.testing.assert_close(scheduler.temperatures, expected)


def test_cfg_equals_cfg_sequential(registry):
    _, sequential = check_cfg_sequential(registry, config(), "tokens")
    assert sequential.extra["parallel"]["static_shapes"]


def test_guidance_changes_the_tokens(registry):
    """The text reaches the logits: random weights of std 0.02 move them little (~0.003), so a large scale."""
    _, _, guided = first_batch(registry, config(options={"guidance_scale": 300.0}))
    _, _, plain = first_batch(registry, config(options={"guidance_scale": 1.0}))
    assert plain.weight_passes == 1 and not torch.equal(guided.extra["tokens"], plain.extra["tokens"])


@pytest.mark.parametrize("stack", [("sdpa",), ("sdpa", "compile")])
def test_lossless_stacks_keep_the_tokens(registry, stack):
    _, _, base = first_batch(registry, config())
    ctx, _, fast = first_batch(registry, config(optimizations=stack))
    assert ctx.instance.maskgit.attention == ctx.instance.cvivit.attention == "sdpa"
    assert torch.equal(base.extra["tokens"], fast.extra["tokens"])
    assert (base.extra["media"] - fast.extra["media"]).abs().max() < 1e-4


def test_flops_are_counted_per_phase(registry):
    """``genaccel profile``'s FLOP count runs through torch's module tracker, which refuses a module input that
    requires grad without a gradient function (MaskGIT's head once took a slice of the tied embeddings)."""
    from genaccel.engine.profiling import count_flops

    ctx, batch, _ = first_batch(registry, config())
    with count_flops() as flops:
        ctx.decoder.run(ctx, batch)
    assert flops["decode"] > 0 and flops["c-vivit decode"] > 0 and flops["text encoder"] > 0


def test_run_case_writes_a_gif_and_frames(registry, tmp_path):
    case = measure(registry, config(out_dir=str(tmp_path), warmup=0), progress=False).to_dict()
    assert case["status"] == "ok" and case["summary"]["phase_s"]["c-vivit decode"] > 0
    files = case["samples"][0]["files"]
    assert files[0].endswith(".gif") and len(files) == 1 + 5 and all(f.endswith(".png") for f in files[1:])
    from PIL import Image

    with Image.open(files[0]) as gif:
        assert gif.n_frames == 5 and gif.size == (32, 32)


@pytest.fixture(scope="module")
def checkpoint(registry, tmp_path_factory):
    """The tiny preset saved as a checkpoint folder, and the tokens of the preset's run."""
    ctx, _, result = first_batch(registry, config())
    return save_checkpoint(ctx.instance, tmp_path_factory.mktemp("phenaki") / "ckpt"), result


def test_checkpoint_round_trip(registry, checkpoint):
    path, preset = checkpoint
    assert sorted(p.name for p in path.iterdir()) == ["cvivit.safetensors", "maskgit.safetensors", "phenaki.json",
                                                      "text_encoder", "tokenizer"]
    ctx, _, loaded = first_batch(registry, config(preset=None, checkpoint=str(path)))
    assert not ctx.instance.random_weights and ctx.instance.frames == 5
    assert torch.equal(preset.extra["tokens"], loaded.extra["tokens"])
    assert torch.equal(preset.extra["media"], loaded.extra["media"])


def run_cli(capsys, monkeypatch, registry, *args) -> str:
    """``genaccel run phenaki/t-v ARGS`` on the command line: exit 2 and one line on stderr, returned."""
    monkeypatch.setattr("genaccel.cli.app.default_registry", lambda: registry)
    code, out, err = cli(capsys, "run", WORKLOAD, "--samples", "1", "--warmup", "0", *args)
    assert code == 2 and out == "", (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("genaccel: error: "), err
    return lines[0]


@pytest.mark.parametrize("args, message", [
    (("--frames", "4"), "--frames 4: C-ViViT takes 1 + k*2 frames"),
    (("--frames", "7"), "--frames 7: 64 video tokens, but MaskGIT has positions for 48; use at most 5 frames"),
    (("--scheduler", "ddim"), "--scheduler 'ddim' is not known to phenaki/t-v"),
    (("--scheduler", "maskgit"), "maskgit"),
    (("--num-inference-steps", "0"), "num"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, monkeypatch, registry, tmp_path, args, message):
    line = run_cli(capsys, monkeypatch, registry, "--preset", "tiny", "--out", str(tmp_path / "o"), *args)
    assert message in line


def test_checkpoint_frames_are_checked_before_any_weight(capsys, monkeypatch, registry, checkpoint, tmp_path):
    broken = shutil.copytree(checkpoint[0], tmp_path / "broken")
    (broken / "maskgit.safetensors").write_bytes(b"not weights")
    line = run_cli(capsys, monkeypatch, registry, "--checkpoint", str(broken), "--frames", "6")
    assert "--frames 6: C-ViViT takes 1 + k*2 frames" in line and "use 5 or 7 frames" in line
    line = run_cli(capsys, monkeypatch, registry, "--checkpoint", str(broken))
    assert "cannot load maskgit.safetensors" in line


@pytest.mark.parametrize("part", ["phenaki.json", "maskgit.safetensors", "cvivit.safetensors", "text_encoder",
                                  "tokenizer"])
def test_a_missing_checkpoint_part_is_one_line(capsys, monkeypatch, registry, checkpoint, tmp_path, part):
    partial = shutil.copytree(checkpoint[0], tmp_path / "partial")
    target = partial / part
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    line = run_cli(capsys, monkeypatch, registry, "--checkpoint", str(partial))
    assert f"lacks {part}" in line and "a Phenaki checkpoint holds phenaki.json" in line


def test_a_broken_checkpoint_config_is_one_line(registry, checkpoint, tmp_path):
    broken = shutil.copytree(checkpoint[0], tmp_path / "broken")
    (broken / "phenaki.json").write_text('{"cvivit": {"image_size": 30}, "maskgit": {}, "decoding": {}}')
    message = one_line_error(first_batch, registry, config(preset=None, checkpoint=str(broken)))
    assert "cannot load phenaki.json" in message
