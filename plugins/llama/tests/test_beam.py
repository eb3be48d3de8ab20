"""Beam search: the same hypotheses as transformers' generate(num_beams=5), the static cache
reordered in place."""

import pytest
import torch
from genaccel.llm.beam import beam_search
from genaccel.llm.kvcache import StaticKVCache
from genaccel.testing import RunConfig, prepared

MAX_NEW = 10


@pytest.fixture(scope="module")
def samples(registry):
    ctx = prepared(registry, RunConfig(workload="llama/t-t", preset="tiny"))
    return ctx.instance.make_samples(3, seed=1, max_new_tokens=MAX_NEW)


def _hf(inst, batch, eos):
    from genaccel.llm.decoding import pad_left

    ids, valid = pad_left(batch, inst.pad_token_id, "cpu")
    out = inst.model.hf.generate(input_ids=ids, attention_mask=valid.long(), num_beams=5, length_penalty=1.0,
                                 early_stopping=False, do_sample=False, max_new_tokens=MAX_NEW,
                                 eos_token_id=eos, pad_token_id=inst.pad_token_id)
    rows = []
    for row in out[:, ids.shape[1]:].tolist():
        rows.append(row[: row.index(eos) + 1] if eos in row else row)
    return rows


@pytest.mark.parametrize("stack", [(), ("sdpa", "static-kv")], ids=["dynamic", "static"])
@pytest.mark.parametrize("batch_size", [1, 3])
def test_beams_equal_transformers_generate(registry, samples, stack, batch_size):
    ctx = prepared(registry, RunConfig(workload="llama/t-t", preset="tiny", optimizations=stack))
    inst = ctx.instance
    lengths = []
    for eos in (inst.eos_token_id, None):  # None: an end token the search often picks, so hypotheses finish early
        if eos is None:
            first = beam_search(inst.model, samples[:1], device="cpu", pad_id=inst.pad_token_id, max_seq_len=512)
            eos = first.outputs[0][3]
        for i in range(0, len(samples), batch_size):
            batch = samples[i : i + batch_size]
            ours = beam_search(inst.model, batch, num_beams=5, device="cpu", pad_id=inst.pad_token_id,
                               max_seq_len=512, eos_id=eos)
            assert ours.outputs == _hf(inst, batch, eos)
            lengths += [len(o) for o in ours.outputs]
    assert min(lengths) < MAX_NEW  # some hypotheses did end early


def test_static_cache_is_reordered_in_place(registry, samples, monkeypatch):
    ctx = prepared(registry, RunConfig(workload="llama/t-t", preset="tiny", optimizations=("static-kv",)))
    model = ctx.instance.model
    seen = []
    reorder = StaticKVCache.reorder

    def spy(cache, index, length=None):  # compare with the index_select reorder on copies, watch the addresses
        want = [b[:, :, :length].index_select(0, index) for b in cache.keys + cache.values]
        reorder(cache, index, length)
        assert all(torch.equal(b[:, :, :length], w) for b, w in zip(cache.keys + cache.values, want))
        seen.append([b.data_ptr() for b in cache.keys + cache.values])

    monkeypatch.setattr(StaticKVCache, "reorder", spy)
    ctx.max_seq_len = 512
    ctx.decoder = registry.decoders["beam"].factory()
    ctx.decoder.run(ctx, samples[:2])
    assert len(seen) == MAX_NEW - 1 and all(s == seen[0] for s in seen)
    assert isinstance(model.cache, StaticKVCache) and model.cache.batch_size == 2 * 5
