"""Every supported architecture, from a folder transformers saved: genaccel's greedy tokens equal
transformers' generate at batch 1 and in a left-padded batch of 3, eager and under
sdpa,static-kv,compile (one-token attention through flex_attention, windowed and soft-capped in its
score_mod).  Prompts are longer than the sliding windows (8), so the windows bind in prefill and decode."""

import pytest
import torch
from genaccel.testing import RunConfig, prepared
from tiny_models import ARCHS

MAX_NEW = 12


def _outputs(registry, path, prompts, stack=(), decoder=None, sizes=(1, 3)):
    """The run's context, samples and outputs at batch 1 and in one batch of 3, by batch size."""
    ctx = prepared(registry, RunConfig(workload="hf/t-t", checkpoint=str(path), data=str(prompts),
                                       optimizations=stack, decoder=decoder))
    ctx.max_seq_len = 128
    samples = ctx.instance.make_samples(3, seed=0, max_new_tokens=MAX_NEW)
    assert min(len(s.input_ids) for s in samples) > 8 and len({len(s.input_ids) for s in samples}) == 3
    return ctx, samples, {b: [o for i in range(0, 3, b) for o in ctx.decoder.run(ctx, samples[i : i + b]).outputs]
                          for b in sizes}


@pytest.mark.parametrize("arch", list(ARCHS))
def test_greedy_tokens_equal_transformers_generate(registry, folder, prompts, arch):
    path = folder(arch)
    _, _, reference = _outputs(registry, path, prompts, decoder="hf-generate")
    ctx, samples, eager = _outputs(registry, path, prompts)
    assert eager == reference
    ids = torch.tensor([samples[0].input_ids])  # logits too: greedy tokens cannot see Gemma 2's final soft-cap
    ctx.instance.model.setup(1, ids.shape[1] + 1)
    with torch.no_grad():
        theirs = ctx.instance.module(input_ids=ids).logits[:, -1]
    torch.testing.assert_close(ctx.instance.model.prefill(ids), theirs)
    torch._dynamo.reset()  # the previous architecture's graphs: its guards would fail under skipped guards
    ctx, _, compiled = _outputs(registry, path, prompts, ("sdpa", "static-kv", "compile"), sizes=(3,))
    assert compiled[3] == reference[3]  # compiled once (the left-padded batch): CPU compiles take seconds
    assert ctx.instance.model.flex_decode  # one-token attention went through flex_attention
    if arch == "gemma2":  # soft-capped attention: no SDPA (a recorded skip); flex decode falls back to eager
        assert [s.name for s in ctx.stack.skipped] == ["sdpa"] and "eager" in ctx.stack.skipped[0].reason
        assert ctx.instance.model.attention == "genaccel-eager-flex-decode"
