"""Phenaki's model pieces on the tiny preset: C-ViViT's causality in time (exact, both attention paths), its round
trip and the frame counts it refuses, the paper-size parameter counts on the meta device, MaskGIT's shapes.  The
parallel-decoding schedule is the core loop's, tested through the workload (test_phenaki_workload.py)."""

from __future__ import annotations

import math

import pytest
import torch
from genaccel_phenaki.build import build_modules
from genaccel_phenaki.config import CViViTConfig, FrameCountError
from genaccel_phenaki.presets import PRESETS

IMPLEMENTATIONS = ("eager", "sdpa")


@pytest.fixture(scope="module")
def tiny():
    return build_modules(PRESETS["tiny"], seed=0)


def video(preset, frames: int, batch: int = 2, seed: int = 0) -> torch.Tensor:
    size = preset.cvivit.image_size
    return torch.randn(batch, preset.cvivit.channels, frames, size, size, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def test_round_trip_shapes(tiny):
    cfg = tiny.preset.cvivit
    assert CViViTConfig().token_shape(11) == (6, 16, 16)  # the paper's (1+10)x128x128 → (1+5)x16x16
    for frames in (1, 5, 9):
        tokens = tiny.cvivit.encode(video(tiny.preset, frames))
        assert tokens.shape == (2, *cfg.token_shape(frames)) and tokens.dtype == torch.long
        assert 0 <= int(tokens.min()) and int(tokens.max()) < cfg.codebook_size
        frames_back = tiny.cvivit.decode(tokens)
        assert frames_back.shape == (2, cfg.channels, frames, cfg.image_size, cfg.image_size)
        assert cfg.frames(tokens.shape[1]) == frames


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("changed", [1, 2, 5, 8])
@torch.no_grad()
def test_changing_a_frame_changes_no_earlier_token(tiny, impl, changed):
    tiny.cvivit.set_attention(impl)
    tp = tiny.preset.cvivit.temporal_patch_size
    before = video(tiny.preset, 9)
    after = before.clone()
    after[:, :, changed] = torch.randn(after[:, :, changed].shape, generator=torch.Generator().manual_seed(1))
    step = 1 + (changed - 1) // tp  # the time step whose space-time patch holds frame `changed`
    z0, z1 = tiny.cvivit.embed(before), tiny.cvivit.embed(after)
    assert torch.equal(z0[:, :step], z1[:, :step])  # bit for bit, not merely close
    assert not torch.equal(z0[:, step], z1[:, step])  # the change did reach its own step
    assert torch.equal(tiny.cvivit.encode(before)[:, :step], tiny.cvivit.encode(after)[:, :step])
    tiny.cvivit.set_attention("eager")


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@torch.no_grad()
def test_changing_a_token_step_changes_no_earlier_frame(tiny, impl):
    tiny.cvivit.set_attention(impl)
    cfg = tiny.preset.cvivit
    tokens = tiny.cvivit.encode(video(tiny.preset, 9))
    changed = tokens.clone()
    changed[:, 3] = (changed[:, 3] + 1) % cfg.codebook_size
    first_frame_of_step = cfg.frames(3)  # frames before step 3's patch: 1 + 2*2
    a, b = tiny.cvivit.decode(tokens), tiny.cvivit.decode(changed)
    assert torch.equal(a[:, :, :first_frame_of_step], b[:, :, :first_frame_of_step])
    assert not torch.equal(a[:, :, first_frame_of_step:], b[:, :, first_frame_of_step:])
    tiny.cvivit.set_attention("eager")


@pytest.mark.parametrize("frames", [0, 2, 4, 6, 10])
def test_frames_the_tokenizer_cannot_take(tiny, frames):
    with pytest.raises(FrameCountError, match=r"C-ViViT takes 1 \+ k\*2 frames") as info:
        tiny.cvivit.encode(torch.zeros(1, 3, frames, 32, 32))
    below = 1 + max(0, frames - 1) // 2 * 2
    assert f"use {below} or {below + 2} frames" in str(info.value)
    if frames:
        assert "not divisible by the temporal patch size 2" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_videos_of_another_size_are_refused(tiny):
    with pytest.raises(FrameCountError, match="3-channel frames of 32x32"):
        tiny.cvivit.encode(torch.zeros(1, 3, 5, 48, 32))
    with pytest.raises(FrameCountError, match=r"\(batch, channels, frames, height, width\)"):
        tiny.cvivit.encode(torch.zeros(3, 5, 32, 32))
    with pytest.raises(FrameCountError, match=r"\(batch, time steps, 4, 4\)"):
        tiny.cvivit.decode(torch.zeros(1, 3, 8, 8, dtype=torch.long))


def test_paper_preset_parameter_counts_on_meta():
    modules = build_modules(PRESETS["1.8b"], device="meta")
    counts = modules.parameter_counts()
    assert next(modules.maskgit.parameters()).is_meta
    assert abs(counts["maskgit"] / 1.8e9 - 1) < 0.03  # App. B.3.1: 24 layers of 2048, "resulting in 1.8B"
    assert abs(counts["cvivit"] / 50e6 - 1) < 0.05  # App. B.1.1: "approximately 50M parameters"
    assert abs(counts["text_encoder"] / 4.76e9 - 1) < 0.01  # T5 v1.1 XXL's encoder, frozen, outside the 1.8B
    assert PRESETS["1.8b"].token_shape == (6, 16, 16) and PRESETS["1.8b"].tokens == 1536


@torch.no_grad()
def test_maskgit_forward_shapes_and_attention_paths(tiny):
    preset, maskgit = tiny.preset, tiny.maskgit
    grid = preset.token_shape
    tokens = torch.randint(0, preset.maskgit.codebook_size, (2, *grid), generator=torch.Generator().manual_seed(0))
    tokens[:, 1:] = maskgit.mask_token_id
    text = torch.randn(2, 7, preset.t5.d_model)
    text_mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3])
    logits = {}
    for impl in IMPLEMENTATIONS:
        maskgit.set_attention(impl)
        logits[impl] = maskgit(tokens, text, text_mask)
    maskgit.set_attention("eager")
    assert logits["eager"].shape == (2, *grid, preset.maskgit.codebook_size)
    torch.testing.assert_close(logits["eager"], logits["sdpa"], rtol=1e-4, atol=1e-5)
    assert maskgit(tokens.reshape(2, -1), text, text_mask).shape == (2, math.prod(grid), preset.maskgit.codebook_size)
    padded = text.clone()
    padded[1, 4:] = 100.0  # masked text positions are not attended to
    torch.testing.assert_close(maskgit(tokens, padded, text_mask), logits["eager"])
    with pytest.raises(ValueError, match="positions for 48 video tokens"):
        maskgit(torch.zeros(1, 49, dtype=torch.long), text[:1])
    with pytest.raises(ValueError, match="not offered by MaskGIT"):
        maskgit.set_attention("flash")
