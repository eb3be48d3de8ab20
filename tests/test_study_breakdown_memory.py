"""``characterize-study``'s operator breakdown (Golden et al. 2024, Fig. 7) and its peak memory beside the
similarity-matrix model (Section V-B), on the tiny Stable Diffusion and Make-A-Video presets: the categories
the modules land in, the bars' normalization, the allocator peak of a forward, and the model against a hand
computation from the tiny preset's stages and against the attention record's lengths."""

from __future__ import annotations

import pytest
import torch
from genaccel.diffusion.similarity import similarity_model
from genaccel.run.diffusion import profile_once
from genaccel.run.memory import forward_peaks
from genaccel.run.operators import CATEGORIES, _categories, normalized_bars
from genaccel.testing import RunConfig, attention_record, prepared, registry_fixture

sd_plugin = pytest.importorskip("genaccel_stable_diffusion")
mav_plugin = pytest.importorskip("genaccel_make_a_video")
registry = registry_fixture(sd_plugin, mav_plugin)
SD, MAV = "stable-diffusion/t-i", "make-a-video/t-v"


def config(workload, **fields) -> RunConfig:
    return RunConfig(workload=workload, **{"preset": "tiny", "samples": 1, "batch_size": 1, "warmup": 0, **fields})


def test_modules_land_in_their_fig7_category(registry):
    unet = "unet.down_blocks.0"
    cats = _categories(prepared(registry, config(SD)).instance.module)
    assert cats[f"{unet}.downsamplers.0"] == "Resample"
    inside = {v for k, v in cats.items() if k.startswith(f"{unet}.downsamplers.0.")}
    assert inside == {None}  # its convolution, timed for the total only: the resampler keeps its time
    assert cats[f"{unet}.resnets.0.conv1"] == "Conv" and cats[f"{unet}.resnets.0.norm1"] == "Norm"
    block = f"{unet}.attentions.0.transformer_blocks.0"
    assert cats[f"{block}.attn1"] == cats[f"{block}.attn2"] == "Attention"
    assert cats[f"{block}.attn1.to_q"] == "Linear"  # the innermost wins: projections are Linear
    assert "Temporal attention" not in cats.values()
    video = _categories(prepared(registry, config(MAV)).instance.module)
    assert video["unet.down_blocks.0.temp_attentions.0.transformer_blocks.0.attn1"] == "Temporal attention"
    assert video["unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1"] == "Attention"


def test_fig7_bars_are_normalized_to_the_baseline(registry):
    eager = profile_once(registry, config(SD), 1, attention="eager")
    sdpa = profile_once(registry, config(SD), 1, attention="sdpa")
    fig7 = normalized_bars(eager, sdpa)
    base, fast = fig7["bars"]["eager"], fig7["bars"]["sdpa"]
    assert list(base) == list(fast) == list(CATEGORIES)
    assert sum(base.values()) == pytest.approx(1.0)
    assert all(v >= 0 for v in fast.values())
    assert sum(fast.values()) == pytest.approx(sdpa["inference_s"] / eager["inference_s"])
    assert all(base[c] > 0 for c in ("Conv", "Linear", "Attention", "Norm", "Resample")) and base["Temporal attention"] == 0
    assert eager["conv_s"] > base["Conv"] * eager["inference_s"]  # every convolution: the resamplers' too


def test_forward_peaks_on_cpu_is_the_allocator_peak_of_each_forward():
    class TwoMiB(torch.nn.Module):
        def forward(self, x):
            a = torch.ones(256, 1024) + x  # 1 MiB
            b = a * 2  # 1 MiB more while a lives
            return b.sum()

    m, kept = TwoMiB(), torch.ones(1 << 20)  # allocated before: not in the peak
    with forward_peaks(m, "cpu") as peaks:
        m(torch.zeros(()))
        m(kept[0])
    assert len(peaks) == 2
    assert all(2 * 2**20 <= p < 2 * 2**20 + 2**16 for p in peaks)


def test_similarity_model_of_the_tiny_unet_by_hand(registry):
    inst = prepared(registry, config(SD)).instance
    model = similarity_model(inst)
    # tiny SD: 64 px images, a VAE of 4 levels (8× down): an 8×8 latent, 64 positions; UNet levels (32, 64, 64),
    # one layer a down block, two an up block, cross-attention at all but the lowest level, 8 heads; the
    # guided step runs 2 rows; the text is 77 tokens; float32.  Stage 0: down_blocks.0 and up_blocks.2 (3
    # transformer blocks) at 64 positions; stage 1: down_blocks.1 and up_blocks.1 (3) at 16; the mid block (1)
    # at 4.  Each block: self (L×L) and cross (L×77).
    per = 2 * 8 * 4
    by_stage = {64: 3, 16: 3, 4: 1}
    assert model["largest_bytes"] == per * 64 * 77  # stage 0's cross-attention: 77 keys > 64
    assert model["total_bytes"] == per * sum(n * (L * L + L * 77) for L, n in by_stage.items())
    assert sorted(c["stage"] for c in model["calls"]) == [0] * 6 + [1] * 6 + [2] * 2


@pytest.mark.parametrize("workload", [SD, MAV])
def test_similarity_model_lengths_are_the_recorded_ones(registry, workload):
    """The model's stages give each attention call the batch and lengths the attention record measures (at 128 px
    too)."""
    for size in (None, 128):
        cfg = config(workload, options={"image_size": size} if size else {})
        model = similarity_model(prepared(registry, cfg).instance)
        record = attention_record(registry, cfg)
        keys = ("module", "batch", "query_len", "key_len")
        seen = {tuple(c[k] for k in keys) for c in record["calls"] if c["module"].startswith("unet.")}
        assert {tuple(c[k] for k in keys) for c in model["calls"]} == seen
