"""bfloat16: the compiled CPU fast path equals eager bfloat16, and runs report their loss against float32."""

import json

import torch
from genaccel.cli import main
from genaccel.llm.gemv import RowReduceLinear
from genaccel.testing import RunConfig, check_token_accuracy, make_batches, prepared

MAX_NEW = 12


def _ctx(registry, dtype, optimizations=()):
    ctx = prepared(registry, RunConfig(workload="llama/t-t", preset="tiny", dtype=dtype, samples=3,
                                      max_new_tokens=MAX_NEW, optimizations=optimizations))
    ctx.max_seq_len = 512
    return ctx


def _outputs(ctx, samples):
    return [out for s in samples for out in ctx.decoder.run(ctx, [s]).outputs]


def test_bfloat16_weights_are_the_float32_weights_rounded(registry):
    f32 = _ctx(registry, "float32").instance.module.state_dict()
    bf16 = _ctx(registry, "bfloat16").instance.module.state_dict()
    assert all(bf16[k].dtype == torch.bfloat16 and torch.equal(bf16[k], f32[k].bfloat16()) for k in f32)


def test_compiled_bfloat16_decode_equals_eager_bfloat16(registry):
    eager = _ctx(registry, "bfloat16", ("sdpa", "static-kv"))
    samples = make_batches(eager)
    samples = [s for batch in samples for s in batch]
    compiled = _ctx(registry, "bfloat16", ("sdpa", "static-kv", "compile"))
    linears = [m for m in compiled.instance.module.modules() if isinstance(m, RowReduceLinear)]
    assert linears and all(m.weight.dtype == torch.bfloat16 for m in linears)  # the GEMV reads bf16 weights
    assert compiled.instance.model.attention == "genaccel-sdpa-flex-decode"
    assert _outputs(compiled, samples) == _outputs(eager, samples)

    # One step's logits: compiled (bf16 weights, fp32 accumulation) within bf16 rounding of eager's.
    for ctx in (eager, compiled):
        m = ctx.instance.model
        m.setup(1, 64)
        m.prefill(torch.tensor([samples[0].input_ids[:20]]))
    token, pos = torch.tensor([5]), torch.tensor(20)
    want = eager.instance.model.decode(token, pos, 21).float()
    got = compiled.instance.model.decode(token, pos, 21).float()
    assert got.dtype == want.dtype and compiled.instance.model.dtype == torch.bfloat16
    assert (got - want).abs().max() <= 0.02 * want.abs().max()


def test_bfloat16_run_reports_its_accuracy_against_float32(tmp_path, capsys):
    assert main(["run", "llama/t-t", "--preset", "tiny", "--samples", "2", "--max-new-tokens", "10",
                 "--opt", "sdpa,static-kv", "--dtype", "bfloat16", "--out", str(tmp_path / "b")]) == 0
    doc = json.loads((tmp_path / "b" / "report.json").read_text())
    acc = doc["accuracy"]
    assert doc["lossless"] is False and doc["dtype"] == "bfloat16"
    assert "float32" in acc["reference"]
    assert acc["mean_kl"] > 0 and len(acc["samples"]) == 2 and check_token_accuracy(doc) == acc
    assert "accuracy impact" in (tmp_path / "b" / "report.md").read_text()
    capsys.readouterr()
    assert main(["list", "--json"]) == 0
    dtypes = {d["name"]: d["lossless"] for d in json.loads(capsys.readouterr().out)["dtypes"]}
    assert dtypes == {"float32": True, "bfloat16": False, "float16": False}


def test_bfloat16_prefill_linear_without_a_bf16_gemm_rounds_fp32_products(monkeypatch):
    """Where the CPU has no bf16 GEMM, a many-row bf16 linear runs in fp32 and rounds once: the
    exact fp32 result rounded to bf16, within bf16 rounding of the native bf16 linear."""
    import genaccel.llm.gemv as gemv

    torch.manual_seed(0)
    layer = RowReduceLinear(96, 40).to(torch.bfloat16)
    x = torch.randn(2, 50, 96).bfloat16()
    want = torch.nn.functional.linear(x.float(), layer.weight.float(), layer.bias.float()).bfloat16()
    native = torch.nn.functional.linear(x, layer.weight, layer.bias)
    monkeypatch.setattr(gemv, "bf16_gemm", lambda: False)
    got = layer(x)
    assert got.dtype == torch.bfloat16 and torch.equal(got, want)
    assert (got.float() - native.float()).abs().max() <= 0.02 * native.float().abs().max()
    monkeypatch.setattr(gemv, "bf16_gemm", lambda: True)
    assert torch.equal(layer(x), native)
