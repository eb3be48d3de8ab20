"""parti/t-i on the tiny preset: the compiled decode step against the eager one, batched against sequential
guidance, greedy decoding against transformers' generate, PNGs, the --checkpoint folder, bad input."""

from __future__ import annotations

import genaccel_parti
import pytest
import torch
from genaccel.decoders.guidance import CFG, SequentialCFG
from genaccel.decoders.tokens import Greedy
from genaccel.llm.kvcache import StaticKVCache
from genaccel.testing import (
    RunConfig,
    check_bf16_kv,
    cli,
    make_batches,
    measure,
    one_line_error,
    prepared,
    registry_fixture,
)
from genaccel_parti.checkpoint import save_checkpoint
from genaccel_parti.presets import IMAGE_BOS, IMAGE_OFFSET, IMAGE_PAD, TEXT_PAD
from PIL import Image

registry = registry_fixture(genaccel_parti)
COMPILED = ("sdpa", "static-kv", "compile")
TOKENS = 64  # the tiny preset's 8x8 grid


def _ctx(registry, **fields):
    return prepared(registry, RunConfig(workload="parti/t-i", **{"preset": "tiny", "samples": 2, "batch_size": 2, **fields}))


def test_compiled_static_decode_step_gives_the_eager_tokens(registry):
    """Greedy, and guided top-k drawing from the same seeded generator: the compiled decode step over the static
    self-attention cache and the cross-attention cache written at prefill writes the eager step's tokens."""

    def outputs(stack):
        ctx = _ctx(registry, optimizations=stack)
        batch = make_batches(ctx)[0]
        return ctx, [Greedy().run(ctx, batch).outputs, CFG(top_k=20, temperature=1.0).run(ctx, batch).outputs]

    _, eager = outputs(())
    ctx, compiled = outputs(COMPILED)
    assert isinstance(ctx.instance.model.cache, StaticKVCache) and ctx.instance.model.compile_mode
    assert compiled == eager
    greedy, guided = eager
    assert greedy != guided and len({tuple(r) for r in guided}) == 2  # two prompts, two images
    for row in greedy + guided:
        assert len(row) == TOKENS and min(row) >= IMAGE_OFFSET  # image codes only, never <pad> or <bos>
        assert len(set(row)) > 8  # not one repeated token


@pytest.mark.parametrize("stack", [(), COMPILED], ids=["eager", "compiled"])
def test_batched_cfg_equals_sequential_cfg(registry, stack):
    """One forward of 2B rows (the prompts' and the empty prompt's encoder states side by side) against two of B
    (the twin over the empty prompt's states): the same tokens, in float64 where both round alike."""
    ctx = _ctx(registry, optimizations=stack)
    ctx.instance.module.double()
    batch = make_batches(ctx)[0]
    a = CFG(top_k=30, temperature=1.0).run(ctx, batch)
    b = SequentialCFG(top_k=30, temperature=1.0).run(ctx, batch)
    assert a.outputs == b.outputs
    assert (a.weight_passes, b.weight_passes) == (1, 2) and a.decode_steps == b.decode_steps == TOKENS - 1
    assert set(a.phases) == {"text encoder", "prefill", "decode", "image decode"}
    unguided = CFG(top_k=30, temperature=1.0, guidance_scale=1.0).run(ctx, batch)  # the conditional stream alone
    assert unguided.outputs != a.outputs


def test_greedy_equals_transformers_generate(registry):
    ctx = _ctx(registry, decoder="greedy")
    inst, batch = ctx.instance, make_batches(ctx)[0]
    ours = ctx.decoder.run(ctx, batch).outputs
    length = max(len(s.source_ids) for s in batch)  # prompts of different lengths, right-padded
    ids = torch.full((2, length), TEXT_PAD)
    mask = torch.zeros((2, length), dtype=torch.long)
    for row, s in enumerate(batch):
        ids[row, : len(s.source_ids)], mask[row, : len(s.source_ids)] = torch.tensor(s.source_ids), 1
    with torch.no_grad():
        ref = inst.transformer.generate(input_ids=ids, attention_mask=mask, decoder_input_ids=torch.full((2, 1), IMAGE_BOS),
                                        do_sample=False, max_new_tokens=TOKENS, min_new_tokens=TOKENS,
                                        suppress_tokens=[IMAGE_PAD, IMAGE_BOS])
    assert ref[:, 1:].tolist() == ours
    reference = _ctx(registry, decoder="hf-generate")  # the reference decoder: generate over our encoder states
    assert reference.decoder.run(reference, make_batches(reference)[0]).outputs == ours


def test_images_are_pngs_of_the_preset_size(registry, tmp_path):
    case = measure(registry, RunConfig(workload="parti/t-i", preset="tiny", samples=2, warmup=0,
                                       out_dir=str(tmp_path)), progress=False).to_dict()
    for rec in case["samples"]:
        assert rec["output_tokens"] == TOKENS
        (path,) = rec["files"]
        with Image.open(path) as im:
            assert im.format == "PNG" and im.size == (32, 32) and im.mode == "RGB"
    assert case["model"]["guidance_scale"] == 1.2 and case["model"]["top_k"] == 100


def test_checkpoint_folder_round_trip_and_its_missing_parts(registry, tmp_path):
    ctx = _ctx(registry)
    folder = save_checkpoint(ctx.instance.parts, tmp_path / "parti-tiny")
    loaded = prepared(registry, RunConfig(workload="parti/t-i", checkpoint=str(folder), samples=2, batch_size=2))
    assert loaded.instance.describe()["random_weights"] is False
    batch, _ = make_batches(ctx)[0], make_batches(loaded)
    want, got = ctx.decoder.run(ctx, batch), loaded.decoder.run(loaded, batch)
    assert got.outputs == want.outputs
    assert all(torch.equal(a, b) for a, b in zip(got.extra["decoded"], want.extra["decoded"]))

    def error(**fields) -> str:
        return one_line_error(prepared, registry, RunConfig(workload="parti/t-i", checkpoint=str(folder), **fields))

    weights = folder / "vitvqgan" / "model.safetensors"
    weights.write_bytes(b"not safetensors")
    assert "cannot load the ViT-VQGAN's weights" in error()
    weights.unlink()
    assert "lacks the ViT-VQGAN (vitvqgan/model.safetensors)" in error()
    (folder / "tokenizer.json").unlink()
    assert "has no tokenizer" in error()


def test_bad_input_is_one_line(registry, capsys, monkeypatch):
    assert "--top-k must be >= 1, got 0" in one_line_error(_ctx, registry, options={"top_k": "0"})
    assert "not taken by parti/t-i with decoder greedy" in one_line_error(_ctx, registry, decoder="greedy",
                                                                          options={"top_k": "5"})
    unknown = one_line_error(_ctx, registry, preset="huge")
    assert "'huge'" in unknown and "20b" in unknown
    inst = _ctx(registry).instance
    assert "makes 64 image tokens per image" in one_line_error(inst.make_samples, 1, 0, max_new_tokens=65)
    assert "--seq-len 100" in one_line_error(inst.make_samples, 1, 0, None, seq_len=100)
    (sample,) = inst.make_samples(1, 0, max_new_tokens=8, seq_len=9)
    assert sample.input_lengths == {"text": 9} and sample.max_new_tokens == 8
    monkeypatch.setattr("genaccel.cli.app.default_registry", lambda: registry)
    code, _, err = cli(capsys, "run", "parti/t-i", "--preset", "tiny", "--samples", "1", "--top-k", "0")
    assert code == 2 and err.count("\n") == 1 and "--top-k must be >= 1" in err


def test_bf16_kv_stores_the_cache_in_bf16_and_reports_the_image_impact(registry):
    acc = check_bf16_kv(registry, RunConfig(workload="parti/t-i", preset="tiny", samples=1))
    assert acc["decoded"]["psnr_db"] > 20 and acc["decoded"]["ssim"] > 0.5
