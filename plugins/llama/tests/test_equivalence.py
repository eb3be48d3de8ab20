"""Greedy tokens are identical under every lossless stack and to transformers' generate."""

import pytest
from genaccel.testing import RunConfig, prepared

MAX_NEW = 12


@pytest.fixture(scope="module")
def samples(registry):
    ctx = prepared(registry, RunConfig(workload="llama/t-t", preset="tiny"))
    return ctx.instance.make_samples(3, seed=0, max_new_tokens=MAX_NEW)


def _outputs(registry, samples, batch_size, optimizations=(), decoder=None, seed=0):
    ctx = prepared(registry, RunConfig(workload="llama/t-t", preset="tiny", optimizations=optimizations,
                                      decoder=decoder, seed=seed))
    ctx.max_seq_len = 512
    out = []
    for i in range(0, len(samples), batch_size):
        out += ctx.decoder.run(ctx, samples[i : i + batch_size]).outputs
    return out


@pytest.fixture(scope="module")
def baseline(registry, samples):
    return _outputs(registry, samples, 1)


def test_samples_follow_humaneval_lengths(samples):
    assert all(44 <= len(s.input_ids) <= 430 and s.max_new_tokens == MAX_NEW for s in samples)
    assert len({len(s.input_ids) for s in samples}) > 1  # a batch needs left padding


@pytest.mark.parametrize("batch_size", [1, 3])
@pytest.mark.parametrize(
    "stack",
    # cuda-graph: a recorded skip on these CPU runs; tests/test_gpu.py checks it on a CUDA device
    [(), ("sdpa",), ("static-kv",), ("sdpa", "static-kv"), ("compile",), ("sdpa", "static-kv", "compile")],
    ids=lambda s: "+".join(s) or "baseline",
)
def test_lossless_stacks_give_identical_greedy_tokens(registry, samples, baseline, stack, batch_size):
    if batch_size == 3 and "compile" in stack and stack != ("sdpa", "static-kv", "compile"):
        pytest.skip("one compiled batched stack is enough")
    assert _outputs(registry, samples, batch_size, stack) == baseline


@pytest.mark.parametrize("batch_size", [1, 3])
def test_identical_to_transformers_generate(registry, samples, baseline, batch_size):
    assert _outputs(registry, samples, batch_size, decoder="hf-generate") == baseline


def test_top_p_is_reproducible_with_a_seed(registry, samples):
    a = _outputs(registry, samples, 3, ("static-kv",), decoder="top-p", seed=5)
    b = _outputs(registry, samples, 3, ("static-kv",), decoder="top-p", seed=5)
    c = _outputs(registry, samples, 3, ("static-kv",), decoder="top-p", seed=6)
    assert a == b
    assert a != c


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_static_cache_window_reads_only_filled_positions(registry, compiled):
    """A decode step told ``kv_len`` reads the cache's first positions only: same logits as reading
    all of it, and compiled, one graph serves every length (no recompiles as the window grows).
    Compiled on CPU, one-token attention goes through flex_attention: same logits as SDPA's."""
    import torch
    from genaccel.api import SDPA_FLEX_DECODE
    from torch._dynamo.utils import counters

    stack = ["sdpa", "static-kv"] + (["compile"] if compiled else [])
    models = []
    for _ in range(3 if compiled else 2):
        ctx = prepared(registry, RunConfig(workload="llama/t-t", preset="tiny", optimizations=stack))
        model = ctx.instance.model
        model.setup(2, 96)
        ids = torch.randint(3, 500, (2, 9))
        valid = torch.ones_like(ids, dtype=torch.bool)
        valid[1, :4] = False  # left padding
        model.prefill(ids, valid)
        models.append(model)
    if compiled:
        assert models[0].attention == SDPA_FLEX_DECODE
        models[2].hf.set_attn_implementation("sdpa")  # the same windowed steps through SDPA's kernel (no routing)
    torch._dynamo.reset()
    counters.clear()
    full, windowed = models[:2]
    tokens = torch.tensor([5, 7])
    for step in range(6):
        pos = torch.tensor(9 + step)
        a = full.decode(tokens, pos)
        b = windowed.decode(tokens, pos, 9 + step + 1)
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
        if compiled:
            torch.testing.assert_close(models[2].decode(tokens, pos, 9 + step + 1), b, rtol=1e-5, atol=1e-5)
        tokens = a.argmax(-1)
    if not compiled:  # compiled, the step's graph is called directly: the cache keeps its first step's target
        assert windowed.cache.read_window.shape[0] == 15  # the last step read positions 0..14 of 96
    if compiled:  # one graph for the full cache, one (symbolic length) for every window; SDPA's
        assert counters["stats"]["unique_graphs"] == 3
    with pytest.raises(ValueError, match="kv_len 97"):
        windowed.decode(tokens, torch.tensor(15), 97)


def test_compiled_step_called_directly_equals_dynamos_call(registry, monkeypatch):
    """The compiled decode step's graph called without dynamo (after a batch's first step) gives the logits
    of the same step called through dynamo, bitwise, over two batches and a growing window."""
    import torch
    from genaccel.engine.direct import DirectCall

    def logits(model):
        out = []
        for batch in range(2):  # the second batch captures its own cache
            model.cache = None  # a new cache of the same shape (the same graph) that each batch's first step captures
            model.setup(2, 64)
            model.prefill(torch.arange(3, 21).view(2, 9) + batch)
            tokens = torch.tensor([5, 7])
            for step in range(5):
                out.append(model.decode(tokens, torch.tensor(9 + step), 9 + step + 1))
                tokens = out[-1].argmax(-1)
        return out

    stack = ("sdpa", "static-kv", "compile", "int8-weight-only")
    model = prepared(registry, RunConfig(workload="llama/t-t", preset="tiny", optimizations=stack)).instance.model
    direct = logits(model)
    assert model.steps._direct[("decode",)] is not None
    monkeypatch.setattr(DirectCall, "accepts", lambda self, args: False)
    through_dynamo = logits(model)
    assert all(torch.equal(a, b) for a, b in zip(direct, through_dynamo))


def test_weights_in_huge_pages_give_identical_greedy_tokens(registry, samples, baseline, monkeypatch):
    from genaccel.engine import memory

    if memory.huge_pages_unavailable():
        pytest.skip(memory.huge_pages_unavailable())
    monkeypatch.setattr(memory, "MIN_BYTES", 4096)  # the tiny preset's weights are a few KiB each
    ctx = prepared(registry, RunConfig(workload="llama/t-t", preset="tiny",
                                      optimizations=("sdpa", "static-kv", "compile", "huge-pages")))
    assert "huge-pages" in ctx.stack.names
    assert all(memory.in_huge_pages(p) for n, p in ctx.instance.module.named_parameters() if p.numel() >= 1024)
    assert _outputs(registry, samples, 1, ("sdpa", "static-kv", "compile", "huge-pages")) == baseline
