"""HSTU: jagged equals padded, causality, candidate isolation, fused equals dense, bad input."""

import pytest
import torch
from genaccel.api import BuildOptions, GenaccelError
from genaccel_hstu.model import HSTUConfig, Jagged, RelativeBias, bucketize, dense_attention, fused_attention
from genaccel_hstu.testing import random_layout
from genaccel_hstu.workload import build_for, validate

torch.manual_seed(0)
CFG = HSTUConfig(dim=32, heads=2, qk_dim=8, v_dim=8, layers=3, full_layers=1, truncate_to=20, max_len=256)


def _layout(lengths, targets=None, seed=0):
    return random_layout(lengths, targets or [0] * len(lengths), torch.Generator().manual_seed(seed))


def _qkv(total, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(total, 16, generator=g, dtype=torch.float64) for _ in range(3))


def _bias():
    b = RelativeBias(256, 128).double()
    with torch.no_grad():
        b.pos_w.normal_(0, 0.5)
        b.ts_w.normal_(0, 0.5)
    return b


@pytest.mark.parametrize("targets", [None, [3, 0, 2, 0]])
@pytest.mark.parametrize("block", [4, 7, 64])
def test_fused_equals_dense(targets, block):
    layout = _layout([13, 1, 30, 0], targets)
    q, k, v = _qkv(44)
    bias = _bias()
    dense = dense_attention(q, k, v, layout, bias, 2, 256)
    fused = fused_attention(q, k, v, layout, bias, 2, 256, block=block)
    torch.testing.assert_close(fused, dense, rtol=1e-10, atol=1e-12)


def test_jagged_equals_each_sequence_alone_and_padding_never_leaks():
    layout = _layout([9, 17, 4])
    q, k, v = _qkv(30)
    bias = _bias()
    together = dense_attention(q, k, v, layout, bias, 2, 256)
    for s, e in zip(layout.offsets[:-1].tolist(), layout.offsets[1:].tolist()):
        alone = Jagged(offsets=torch.tensor([0, e - s]), timestamps=layout.timestamps[s:e], num_targets=torch.tensor([0]))
        torch.testing.assert_close(dense_attention(q[s:e], k[s:e], v[s:e], alone, bias, 2, 256), together[s:e])


def test_fused_bias_equals_materialized_bias():
    layout = _layout([12])
    bias = _bias()
    ts, nxt = layout.timestamps, layout.next_timestamps()
    dense = bias.dense(ts[None], nxt[None])[0]
    pos = torch.arange(12)
    torch.testing.assert_close(bias.block(pos[3:9], pos[0:5], nxt[3:9], ts[0:5]), dense[3:9, 0:5])
    assert bucketize(torch.tensor([0, 1, 2, -100, 10**9]), 128).tolist() == [0, 0, 2, 15, 68]


@pytest.mark.parametrize("attention", [dense_attention, fused_attention])
def test_causality_and_candidates_do_not_see_each_other(attention):
    layout = _layout([20], targets=[5])
    q, k, v = _qkv(20)
    bias = _bias()
    base = attention(q, k, v, layout, bias, 2, 256)
    for j in (7, 16):  # a history event, then a candidate
        k2, v2 = k.clone(), v.clone()
        k2[j] += 1.0
        v2[j] += 1.0
        out = attention(q, k2, v2, layout, bias, 2, 256)
        torch.testing.assert_close(out[:j], base[:j])  # nothing before j changes
        if j >= 15:  # a candidate: the other candidates are unchanged too
            others = [i for i in range(15, 20) if i != j]
            torch.testing.assert_close(out[others], base[others])
        assert not torch.allclose(out[j], base[j])


@pytest.mark.parametrize("task", ["ranking", "retrieval"])
def test_model_fused_path_matches_dense_in_fp32_and_bf16(task):
    wl = build_for(task)(BuildOptions(preset="tiny", seed=0))
    samples = wl.make_samples(3, seed=0, seq_len=60) + wl.make_samples(1, seed=1, seq_len=17 if task == "ranking" else 1)
    items, actions, layout = wl.collate(samples)
    x = wl.model.embed(items, actions)
    with torch.no_grad():
        dense, _ = wl.model(x, layout)
        wl.set_attention("fused")
        fused, _ = wl.model(x, layout)
    torch.testing.assert_close(fused, dense, rtol=1e-4, atol=1e-5)
    # bf16: the fused path is no further from fp32 than the dense path is (within 2x)
    wl16 = build_for(task)(BuildOptions(preset="tiny", seed=0, dtype="bfloat16"))
    with torch.no_grad():
        xb = x.bfloat16()
        dense16, _ = wl16.model(xb, layout)
        wl16.set_attention("fused")
        fused16, _ = wl16.model(xb, layout)
    err_dense = (dense16.float() - dense).abs().max()
    err_fused = (fused16.float() - dense).abs().max()
    assert err_fused <= 2 * err_dense + 1e-6, (err_fused, err_dense)


def test_truncation_keeps_the_last_events_and_every_candidate():
    layout = _layout([50, 10], targets=[4, 2])
    index, short = layout.keep_last(20)
    assert short.lengths.tolist() == [24, 10]
    assert index[:24].tolist() == list(range(26, 50))


def test_empty_and_length_one_histories():
    wl = build_for("retrieval")(BuildOptions(preset="tiny"))
    items, actions, layout = wl.collate(wl.make_samples(1, 0, seq_len=1))
    with torch.no_grad():
        out = wl.run_batch(wl.make_samples(1, 0, seq_len=1))
    assert len(out["outputs"][0]) == 10
    layout = _layout([0, 5, 0])
    q, k, v = _qkv(5)
    bias = _bias()
    fused = fused_attention(q, k, v, layout, bias, 2, 256)
    torch.testing.assert_close(fused, dense_attention(q, k, v, layout, bias, 2, 256))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d["items"].__setitem__(3, -1), r"item ids must lie in 0\.\.6000; got -1"),
        (lambda d: d["items"].__setitem__(3, 6001), r"item ids must lie in 0\.\.6000; got .*6001"),
        (lambda d: d["timestamps"].__setitem__(4, 0), "timestamps go backwards inside a sequence at event 4"),
        (lambda d: d.__setitem__("offsets", torch.tensor([0, 8, 5, 10])), r"offsets are not monotone: offsets\[2\]=5 < offsets\[1\]=8"),
        (lambda d: d.__setitem__("offsets", torch.tensor([0, 5, 9])), "offsets end at 9 but there are 10 items"),
    ],
)
def test_bad_input_is_a_clear_error(change, message):
    data = {"items": torch.arange(10), "actions": torch.zeros(10, dtype=torch.long),
            "timestamps": torch.arange(10) * 10, "offsets": torch.tensor([0, 5, 10])}
    change(data)
    with pytest.raises(GenaccelError, match=message):
        validate(data["items"], data["actions"], data["timestamps"], data["offsets"], torch.zeros(2, dtype=torch.long), HSTUConfig())


def test_timestamps_may_restart_at_a_sequence_boundary():
    ts = torch.tensor([10, 20, 30, 5, 6])
    validate(torch.arange(5), torch.zeros(5, dtype=torch.long), ts, torch.tensor([0, 3, 5]), torch.zeros(2, dtype=torch.long), HSTUConfig())


def test_cli_run_with_fused_attention(tmp_path):
    import json

    from genaccel.cli import main

    out = tmp_path / "r"
    assert main(["run", "hstu/ranking", "--preset", "tiny", "--samples", "2", "--batch-size", "2", "--seq-len", "64",
                 "--opt", "hstu-fused-attention", "--out", str(out)]) == 0
    doc = json.loads((out / "report.json").read_text())
    assert doc["decoder"] == "nar" and doc["optimizations"] == ["hstu-fused-attention"]
    rec = doc["samples"][0]
    assert rec["input_history"] == 48 and rec["input_candidates"] == 16 and rec["output_tokens"] == 16
    assert rec["embedding_s"] > 0 and rec["latency_s"] > 0


@pytest.mark.parametrize("opt", ["int8-weight-only", "autoquant"])
def test_quantized_hstu_reports_its_accuracy_impact(tmp_path, opt):
    import json

    from genaccel.cli import main

    out = tmp_path / "q"
    assert main(["run", "hstu/retrieval", "--preset", "tiny", "--samples", "2", "--batch-size", "2", "--seq-len", "64",
                 "--opt", opt, "--out", str(out)]) == 0
    doc = json.loads((out / "report.json").read_text())
    acc = doc["accuracy"]
    assert doc["lossless"] is False and len(acc["samples"]) == 2
    rows = acc["samples"]  # the rates are the samples' means; an item in place is in the set too
    assert acc["token_agreement"] == pytest.approx(sum(r["agreement"] for r in rows) / 2)
    assert acc["set_overlap"] == pytest.approx(sum(r["overlap"] for r in rows) / 2)
    assert all(r["overlap"] >= r["agreement"] and (not r["exact"] or r["agreement"] == r["overlap"] == 1) for r in rows)
    layers = set(doc["optimization_notes"][opt]["layers"])
    used = {f"layers.{i}.{n}" for i in range(3) for n in ("uvqk", "o")}
    # autoquant times only the layers the calibration batch calls (retrieval never runs the ranking head)
    assert layers == (used if opt == "autoquant" else used | {"ranking_head.0", "ranking_head.2"})


def test_compiled_layers_match_eager():
    from genaccel_hstu.model import HSTU

    model = HSTU(CFG).eval()
    layout = _layout([13, 30])
    x = torch.randn(43, CFG.dim)
    with torch.no_grad():
        want, _ = model(x, layout)
        model.set_compile("default")
        for _ in range(2):
            got, _ = model(x, layout)
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    assert model.steps.mode == "compile" and len(model.steps._fns) == 2 * CFG.layers
