"""Every supported architecture, from a folder transformers saved: genaccel's greedy tokens equal
transformers' generate at batch 1 and in a left-padded batch of 3, eager and under
sdpa,static-kv,compile (one-token attention through flex_attention, windowed and soft-capped in its
score_mod).  Prompts are longer than the sliding windows (8), so the windows bind in prefill and decode."""

import pytest
from genaccel.testing import RunConfig, prepared
from tiny_models import ARCHS

MAX_NEW = 12


def _outputs(registry, path, prompts, stack=(), decoder=None):
    """The run's context and its outputs at batch 1 and in one batch of 3, by batch size."""
    ctx = prepared(registry, RunConfig(workload="hf/t-t", checkpoint=str(path), data=str(prompts),
                                       optimizations=stack, decoder=decoder))
    ctx.max_seq_len = 128
    samples = ctx.instance.make_samples(3, seed=0, max_new_tokens=MAX_NEW)
    assert min(len(s.input_ids) for s in samples) > 8 and len({len(s.input_ids) for s in samples}) == 3
    return ctx, {b: [o for i in range(0, 3, b) for o in ctx.decoder.run(ctx, samples[i : i + b]).outputs]
                 for b in (1, 3)}


@pytest.mark.parametrize("arch", list(ARCHS))
def test_greedy_tokens_equal_transformers_generate(registry, folder, prompts, arch):
    path = folder(arch)
    _, reference = _outputs(registry, path, prompts, decoder="hf-generate")
    _, eager = _outputs(registry, path, prompts)
    ctx, compiled = _outputs(registry, path, prompts, ("sdpa", "static-kv", "compile"))
    assert eager == reference
    assert compiled == reference
    assert ctx.instance.model.flex_decode  # one-token attention went through flex_attention
    if arch == "gemma2":  # soft-capped attention: no SDPA (a recorded skip); flex decode falls back to eager
        assert [s.name for s in ctx.stack.skipped] == ["sdpa"] and "eager" in ctx.stack.skipped[0].reason
        assert ctx.instance.model.attention == "genaccel-eager-flex-decode"
