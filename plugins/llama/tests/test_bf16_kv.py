"""bf16-kv: the static cache holds the float32 keys and values rounded to bfloat16, attention reads them in
float32 (or in flex attention's bf16 kernel when compiled on CPU), and a run reports its accuracy impact."""

import json

import torch
from genaccel.cli import main
from genaccel.testing import RunConfig, make_batches, prepared

SDPA_STATIC = ("sdpa", "static-kv")


def _ctx(registry, optimizations, dtype="float32"):
    ctx = prepared(registry, RunConfig(workload="llama/t-t", preset="tiny", dtype=dtype, samples=2,
                                      max_new_tokens=8, optimizations=optimizations))
    ctx.max_seq_len = 128
    return ctx


def _prefilled(ctx, prompt):
    model = ctx.instance.model
    model.setup(1, 64)
    return model, model.prefill(torch.tensor([prompt]))


def test_the_cache_holds_the_float32_keys_rounded_and_logits_stay_close(registry):
    f32 = _ctx(registry, SDPA_STATIC)
    bf16 = _ctx(registry, (*SDPA_STATIC, "bf16-kv"))
    prompt = make_batches(f32)[0][0].input_ids[:20]
    want_model, want = _prefilled(f32, prompt)
    got_model, got = _prefilled(bf16, prompt)
    assert got_model.dtype == torch.float32 and got.dtype == torch.float32
    assert {t.dtype for t in (*got_model.cache.keys, *got_model.cache.values)} == {torch.bfloat16}
    # layer 0's keys and values come from the same inputs: the float32 cache's, rounded once
    for got_buf, want_buf in ((got_model.cache.keys[0], want_model.cache.keys[0]),
                              (got_model.cache.values[0], want_model.cache.values[0])):
        assert torch.equal(got_buf[:, :, :20], want_buf[:, :, :20].bfloat16())
    assert not torch.equal(got, want)  # later layers attend to rounded keys: lossy
    assert (got - want).abs().max() <= 0.02 * want.abs().max()
    assert got_model.kv_bytes_per_token() * 2 == want_model.kv_bytes_per_token()
    assert "bytes per position instead of" in bf16.notes["bf16-kv"]


def test_compiled_bf16_kv_decode_is_within_bf16_rounding_of_eager(registry):
    eager = _ctx(registry, (*SDPA_STATIC, "bf16-kv"))
    compiled = _ctx(registry, (*SDPA_STATIC, "bf16-kv", "compile"))
    assert compiled.instance.model.flex_decode and not eager.instance.model.flex_decode
    prompt = make_batches(eager)[0][0].input_ids[:20]
    steps = []
    for ctx in (eager, compiled):
        model, _ = _prefilled(ctx, prompt)
        steps.append([model.decode(torch.tensor([t]), torch.tensor(20 + i), 21 + i) for i, t in enumerate((5, 9, 2))])
    for want, got in zip(*steps):
        assert got.dtype == want.dtype == torch.float32
        assert (got - want).abs().max() <= 0.02 * want.abs().max()


def test_bf16_kv_runs_report_their_accuracy_and_bf16_models_skip_it(tmp_path):
    assert main(["run", "llama/t-t", "--preset", "tiny", "--samples", "2", "--max-new-tokens", "8",
                 "--opt", "sdpa,static-kv,bf16-kv", "--out", str(tmp_path / "a")]) == 0
    doc = json.loads((tmp_path / "a" / "report.json").read_text())
    assert doc["lossless"] is False and len(doc["accuracy"]["samples"]) == 2
    assert doc["accuracy"]["mean_kl"] > 0  # scored through the decode steps, which read the bf16 cache
    assert main(["run", "llama/t-t", "--preset", "tiny", "--samples", "1", "--max-new-tokens", "4", "--dtype",
                 "bfloat16", "--opt", "sdpa,static-kv,bf16-kv", "--out", str(tmp_path / "b")]) == 0
    doc = json.loads((tmp_path / "b" / "report.json").read_text())
    assert [s["name"] for s in doc["skipped_optimizations"]] == ["bf16-kv"]
    assert "computes in bfloat16" in doc["skipped_optimizations"][0]["reason"]
