"""int4 weight-only on CPU: the packed weights stand for the float ones within int4's step, a layer
the kernel cannot take stays float and is recorded, and greedy tokens against float32 are measured."""

import json

import pytest
import torch
from genaccel.cli import main
from genaccel.optimizations.int4cpu import Int4Linear, dequantize_uint4, quantize_int4_cpu
from genaccel.testing import RunConfig, check_token_accuracy, prepared, with_options
from torch import nn


@pytest.mark.parametrize("group_size", [32, 64, 128])
def test_packed_weights_round_trip_within_the_quantization_step(group_size):
    torch.manual_seed(0)
    layer = nn.Linear(256, 48)
    w = layer.weight.detach().clone()
    left = quantize_int4_cpu(layer, {"": layer}, group_size)
    assert left == {} and type(layer) is Int4Linear
    assert layer.weight.dtype == torch.uint8 and layer.weight.shape == (48, 128)  # two weights a byte
    assert layer.scale_zero.shape == (48, 256 // group_size, 2)
    deq = dequantize_uint4(layer.weight, layer.scale_zero, group_size)
    groups = w.view(48, -1, group_size)
    step = (groups.amax(-1) - groups.amin(-1)) / 15  # one int4 step per group (asymmetric, 16 levels)
    err = (deq - w).abs().view(48, -1, group_size).amax(-1)
    assert (err <= step * 0.6).all()  # half a step, plus the bf16 rounding of scales and zero points
    assert (err > 0).any()  # lossy: the test would notice float weights
    x = torch.randn(3, 256)
    with torch.no_grad():
        want = x @ deq.t() + layer.bias
        got = layer(x)  # the native kernel (int8 inputs) where it runs
        assert (got - want).abs().max() < 0.01 * want.abs().max()
        layer.native = False  # the portable path: the dequantized weights' float product
        torch.testing.assert_close(layer(x), want, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(layer(torch.randn(40, 256)).shape, torch.Size([40, 48]))  # many rows


def test_layers_the_kernel_cannot_take_stay_float_and_are_recorded(registry):
    ctx = prepared(registry, RunConfig(workload="llama/t-t", preset="tiny", optimizations=("int4-weight-only",)))
    note = ctx.notes["int4-weight-only"]  # tiny: hidden 64 (not a multiple of 128), FFN 128
    mods = dict(ctx.instance.module.named_modules())
    assert set(note["layers"]) == {n for n, m in mods.items() if n.endswith("down_proj")}
    assert note["left"] and all("in_features 64" in why for why in note["left"].values())
    for name in note["layers"]:
        assert type(mods[name]) is Int4Linear
    for name in note["left"]:
        assert type(mods[name]) is nn.Linear and mods[name].weight.dtype == torch.float32


def test_group_size_option_is_checked(registry):
    ok = with_options(RunConfig(workload="llama/t-t", preset="tiny", optimizations=("int4-weight-only",)),
                      int4_group_size=32)
    note = prepared(registry, ok).notes["int4-weight-only"]
    assert "left" not in note and "groups of 32" in note["summary"]
    assert main(["run", "llama/t-t", "--preset", "tiny", "--opt", "int4-weight-only", "--int4-group-size", "48"]) == 2


def test_compiled_int4_decode_reports_its_token_agreement_with_float32(tmp_path):
    assert main(["run", "llama/t-t", "--preset", "tiny", "--samples", "2", "--max-new-tokens", "12",
                 "--opt", "sdpa,static-kv,compile,int4-weight-only", "--int4-group-size", "32",
                 "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "report.json").read_text())
    assert doc["lossless"] is False and "int4-weight-only" in doc["optimizations"]
    assert doc["optimization_notes"]["int4-weight-only"]["layers"]  # quantized, not skipped
    acc = check_token_accuracy(doc)
    assert 0 <= acc["token_agreement"] <= 1 and acc["mean_kl"] > 0  # int4 changes the logits
    print(f"int4 g32 vs float32: token agreement {acc['token_agreement']:.2f}, "
          f"teacher-forced top-1 {acc['teacher_forced_top1_agreement']:.2f}")
