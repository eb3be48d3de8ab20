"""Quantization: uniform torchao configs, autoquant's per-layer choice, and the accuracy impact."""

import json

import pytest
import torch
from genaccel.cli import main
from genaccel.optimizations.int4cpu import Int4Linear
from genaccel.plugin.manager import default_registry
from genaccel.testing import RunConfig, prepared
from torch import nn


def _weights(module):
    """The kind of each layer's weight: its tensor type, or Int4Linear for CPU int4 (packed bytes in a Parameter)."""
    return {name: "Int4Linear" if isinstance(m, Int4Linear) else type(m.weight).__name__
            for name, m in module.named_modules() if isinstance(m, (nn.Linear, nn.Embedding))}


@pytest.mark.parametrize("name,kind", [("int8-weight-only", "Int8Tensor"), ("int8-dynamic", "Int8Tensor")])
def test_uniform_configs_change_only_the_layers_they_claim(registry, name, kind):
    before = prepared(registry, RunConfig(workload="llama/t-t", preset="tiny"))
    ctx = prepared(registry, RunConfig(workload="llama/t-t", preset="tiny", optimizations=(name,)))
    note = ctx.notes[name]
    claimed = set(note["layers"])
    assert claimed == {n for n, m in ctx.instance.module.named_modules() if isinstance(m, nn.Linear)}
    after = _weights(ctx.instance.module)
    assert all(after[n] == kind for n in claimed)
    assert after["model.embed_tokens"] == "Parameter"  # not a linear layer: untouched
    # everything that is not a claimed linear keeps its exact values
    ref = dict(before.instance.module.named_parameters())
    for n, p in ctx.instance.module.named_parameters():
        if n.rsplit(".", 1)[0] not in claimed:
            assert torch.equal(p, ref[n]), n


def test_autoquant_picks_a_config_per_layer_and_says_why(registry):
    ctx = prepared(registry, RunConfig(workload="llama/t-t", preset="tiny", samples=1, max_new_tokens=6,
                                      optimizations=("autoquant",)))
    note = ctx.notes["autoquant"]
    linears = {n for n, m in ctx.instance.module.named_modules() if isinstance(m, nn.Linear)}
    assert set(note["layers"]) == linears
    assert set(note["layers"].values()) <= {"none", "int8-weight-only", "int8-dynamic", "int4-weight-only"}
    kinds = _weights(ctx.instance.module)
    for layer, choice in note["layers"].items():
        assert (kinds[layer] == "Parameter") == (choice == "none"), layer
    for d in note["decisions"]:
        phases = {s[0] for s in d["shapes"]}
        assert phases == {"prefill", "decode"}  # calibrated on both phases of a real generation
        assert d["choice"] == min(d["timings"], key=lambda c: d["timings"][c]["weighted_s"])
        int4 = {"int4-weight-only"} if d["weight"][1] % 128 == 0 else set()  # on CPU where groups of 128 fit
        assert set(d["timings"]) == {"none", "int8-weight-only", "int8-dynamic"} | int4
    assert sorted(n for d in note["decisions"] for n in d["layers"]) == sorted(linears)
    out = ctx.decoder.run(ctx, ctx.instance.make_samples(1, 0, 6))
    assert len(out.outputs[0]) == 6  # the quantized model still generates


def test_accuracy_impact_is_zero_for_lossless_and_measured_for_lossy(tmp_path, capsys):
    assert main(["run", "llama/t-t", "--preset", "tiny", "--samples", "2", "--max-new-tokens", "10",
                 "--opt", "sdpa,static-kv", "--out", str(tmp_path / "a")]) == 0
    lossless = json.loads((tmp_path / "a" / "report.json").read_text())
    assert "accuracy" not in lossless  # nothing to measure: the stack's tokens equal the baseline's (tested)
    from genaccel.run import accuracy

    ctx = prepared(default_registry(), RunConfig(workload="llama/t-t", preset="tiny", samples=2, max_new_tokens=10),
                  apply=False)
    from genaccel.testing import make_batches

    batches = make_batches(ctx)
    ref = accuracy.capture(ctx, batches)
    same = accuracy.impact(ctx, ref, [{"id": s.id, "output_ids": ref[s.id]["output"]} for b in batches for s in b])
    assert same["token_agreement"] == 1.0 and same["mean_kl"] == pytest.approx(0, abs=1e-9)
    assert same["teacher_forced_top1_agreement"] == 1.0

    assert main(["run", "llama/t-t", "--preset", "tiny", "--samples", "2", "--max-new-tokens", "10",
                 "--opt", "int8-dynamic", "--out", str(tmp_path / "q")]) == 0
    doc = json.loads((tmp_path / "q" / "report.json").read_text())
    acc = doc["accuracy"]
    assert doc["lossless"] is False
    assert acc["mean_kl"] > 1e-6 and acc["teacher_forced_top1_agreement"] <= 1.0
    assert len(acc["samples"]) == 2 and acc["perplexity"] != acc["reference_perplexity"]
    assert "accuracy impact" in (tmp_path / "q" / "report.md").read_text()


def test_list_marks_lossy_optimizations(capsys):
    assert main(["list", "--json"]) == 0
    opts = {o["name"]: o for o in json.loads(capsys.readouterr().out)["optimizations"]}
    assert not opts["autoquant"]["lossless"] and not opts["int8-weight-only"]["lossless"]
    assert opts["sdpa"]["lossless"] and opts["layerskip"]["lossless"]
    assert opts["int4-weight-only"]["devices"] == ["cpu", "cuda"]


@pytest.mark.parametrize("native", [False, True])
@pytest.mark.parametrize("rows", [1, 2, 5, 40])
def test_cpu_gemv_path_of_int8_weight_only_matches_torchao(rows, native):
    from genaccel.api import cpu_gemv_linears
    from genaccel.engine.native import cpu_ops
    from torchao.quantization import Int8WeightOnlyConfig, quantize_

    if native and cpu_ops() is None:
        pytest.skip("genaccel's CPU kernels do not run here")

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(50, 24), nn.Linear(24, 16, bias=False))  # 50: padded to 52 in the words
    quantize_(net, Int8WeightOnlyConfig())
    x = torch.randn(rows, 50)
    with torch.no_grad():
        want = net(x)  # torchao's eager path
        dequantized = x
        for layer in net:  # the reference: the int8 values times their row scales, in float
            w = layer.weight.qdata.float() * layer.weight.scale.reshape(-1, 1)
            dequantized = nn.functional.linear(dequantized, w, layer.bias)
        assert cpu_gemv_linears(net, native=native) == 2 and all(layer.native == native for layer in net)
        if native:  # the int8 values themselves
            assert net[0].int8_weight.dtype == torch.int8 and net[0].int8_words is None
            assert torch.equal(net[1].int8_weight, net[1].weight.qdata)
        else:  # four to a word, as float32 bits
            assert net[0].int8_words.dtype == torch.float32 and net[0].int8_weight is None
            assert net[0].int8_words.shape == (24, 13) and net[1].int8_words.shape == (16, 6)
        got = torch.compile(net, dynamic=False)(x)
    torch.testing.assert_close(got, dequantized, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_many_row_int8_products_convert_the_weight_in_blocks_and_equal_torchao(dtype, monkeypatch):
    from genaccel.api import cpu_gemv_linears
    from genaccel.llm import gemv
    from torchao.quantization import Int8WeightOnlyConfig, quantize_

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(64, 40), nn.Linear(40, 24, bias=False)).to(dtype)
    quantize_(net, Int8WeightOnlyConfig())
    x = torch.randn(2, 30, 64, dtype=dtype)  # 60 rows: more than a decode step's
    monkeypatch.setattr(gemv, "INT8_BLOCK", 16)  # 40 output rows: two whole blocks and a part
    original, calls = gemv.int8_linear, []

    def counted(x, q, scale, bias):
        calls.append(tuple(q.shape))
        return original(x, q, scale, bias)

    monkeypatch.setattr(gemv, "int8_linear", counted)
    with torch.no_grad():
        want = net(x)  # torchao's eager path: the dequantized weight's products
        cpu_gemv_linears(net)
        got = net(x)
    assert calls == [(40, 64), (24, 40)]
    assert got.dtype == dtype and got.shape == (2, 30, 24)
    torch.testing.assert_close(got, want, **({} if dtype == torch.float32 else dict(rtol=2e-2, atol=2e-2)))


def test_a_float_row_reduce_linear_equals_nn_linear():
    from genaccel.llm.gemv import RowReduceLinear

    torch.manual_seed(0)
    layer = RowReduceLinear(12, 5)
    x = torch.randn(2, 12)
    with torch.no_grad():
        want = nn.functional.linear(x, layer.weight, layer.bias)
        torch.testing.assert_close(torch.compile(layer, dynamic=False)(x), want)
    assert layer.int8_words is None and "int8_words" not in layer.state_dict()
    assert layer.int8_weight is None and "int8_weight" not in layer.state_dict()


def test_int8_words_hold_every_weight_once():
    from genaccel.llm.gemv import int8_quarters, pack_int8

    q = torch.randint(-128, 128, (7, 10), dtype=torch.int8)
    q[0, :4] = torch.tensor([-128, 127, -1, 0], dtype=torch.int8)  # the extremes and sign bits
    quarters = int8_quarters(pack_int8(q), torch.float32)  # lane k holds features [3k, 3k + 3)
    unpacked = torch.cat(quarters, dim=1)[:, :10]
    assert torch.equal(unpacked, q.float())
    assert torch.equal(torch.cat(quarters, dim=1)[:, 10:], torch.zeros(7, 2))  # the padding reads as 0


def test_compiled_int8_decode_reads_packed_int8_within_its_input_rounding_of_eager_int8(registry):
    from genaccel.llm.gemv import RowReduceLinear
    from genaccel.testing import make_batches

    def ctx(*opts):
        c = prepared(registry, RunConfig(workload="llama/t-t", preset="tiny", samples=2, max_new_tokens=10,
                                         optimizations=("int8-weight-only", "sdpa", "static-kv", *opts)))
        c.max_seq_len = 512
        return c

    eager, compiled = ctx(), ctx("compile")
    linears = [m for m in compiled.instance.module.modules() if isinstance(m, RowReduceLinear)]
    assert len(linears) == len(compiled.notes["int8-weight-only"]["layers"])
    assert all((m.int8_packed if m.native else m.int8_words) is not None for m in linears)
    samples = [s for batch in make_batches(eager) for s in batch]
    for c in (eager, compiled):
        m = c.instance.model
        m.setup(1, 64)
        m.prefill(torch.tensor([samples[0].input_ids[:20]]))
    token, pos = torch.tensor([5]), torch.tensor(20)
    want = eager.instance.model.decode(token, pos, 21)
    got = compiled.instance.model.decode(token, pos, 21)
    # the native kernel also rounds each input row to int8 per 32 features (as q8_0 does): not the same product
    # (test_native checks the kernel exactly); the logits stay within that rounding of eager int8's
    assert not torch.equal(got, want) and (got - want).abs().max() <= 0.03 * want.abs().max()


def test_compiled_int8_run_reports_its_token_agreement_with_float32(tmp_path):
    from genaccel.testing import check_token_accuracy

    assert main(["run", "llama/t-t", "--preset", "tiny", "--samples", "2", "--max-new-tokens", "12",
                 "--opt", "sdpa,static-kv,compile,int8-weight-only", "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "report.json").read_text())
    acc = check_token_accuracy(doc)
    assert doc["lossless"] is False and 0 < acc["mean_kl"] < 0.01  # int8 moves the logits, a little
    assert acc["teacher_forced_top1_agreement"] >= 0.9
    print(f"int8 vs float32: token agreement {acc['token_agreement']:.2f}, "
          f"teacher-forced top-1 {acc['teacher_forced_top1_agreement']:.2f}, mean KL {acc['mean_kl']:.2e}")


@pytest.mark.parametrize("name", ["int8-weight-only", "int4-weight-only"])
def test_a_tied_lm_head_is_built_tied_and_quantized_apart_from_the_embedding(name):
    """Llama 3.2's tied head: random weights keep the tie; quantizing gives the head its own weight
    (the step reads it whole) and leaves the embedding's float table, which lookups read."""
    from genaccel.llm.building import random_causal_lm
    from genaccel.optimizations.quantization import _quantize, linear_layers
    from genaccel.plugin.specs import BuildOptions
    from transformers import LlamaConfig, LlamaForCausalLM

    def build(tied):
        config = LlamaConfig(hidden_size=128, intermediate_size=256, num_hidden_layers=1, num_attention_heads=4,
                             num_key_value_heads=2, vocab_size=256, tie_word_embeddings=tied)
        return random_causal_lm(LlamaForCausalLM, config, BuildOptions())

    hf = build(True)
    embedding = hf.model.embed_tokens.weight
    assert hf.lm_head.weight is embedding
    assert torch.equal(build(False).model.embed_tokens.weight, embedding)  # drawn once: the head draws nothing more
    table = embedding.detach().clone()
    tokens = torch.tensor([[3, 7, 11]])
    with torch.no_grad():
        want = hf(tokens).logits
    assert "lm_head" in linear_layers(hf)
    _quantize(hf, {"lm_head"}, name)
    assert hf.lm_head.weight is not embedding and hf.model.embed_tokens.weight is embedding
    assert torch.equal(embedding, table)  # the lookups' table stays float, unchanged
    assert _weights(hf)["lm_head"] == ("Int4Linear" if name == "int4-weight-only" else "Int8Tensor")
    with torch.no_grad():
        got = hf(tokens).logits
    error = (got - want).pow(2).mean().sqrt() / want.pow(2).mean().sqrt()
    assert 0 < error < (0.25 if name == "int4-weight-only" else 0.02)  # lossy, within the format's error
