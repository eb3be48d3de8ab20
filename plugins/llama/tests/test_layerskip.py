"""Self-speculative decoding (LayerSkip): exactness, sampling distribution, caches, training."""

import json

import pytest
import torch
from genaccel.api import HFCausalLM
from genaccel.cli import main
from genaccel.errors import GenaccelError
from genaccel.llm.decoding import generate, greedy_pick, top_p_pick
from genaccel.llm.speculative import accept_sampled, speculate
from genaccel.models.inputs import TextSample
from genaccel.testing import RunConfig, prepared
from transformers import LlamaConfig, LlamaForCausalLM

MAX_NEW = 24


@pytest.fixture(scope="module")
def samples(registry):
    ctx = prepared(registry, RunConfig(workload="llama/t-t", preset="tiny"))
    return ctx.instance.make_samples(3, seed=1, max_new_tokens=MAX_NEW)


def _outputs(registry, samples, batch_size, optimizations=(), decoder=None, seed=0, **options):
    ctx = prepared(registry, RunConfig(workload="llama/t-t", preset="tiny", optimizations=optimizations, decoder=decoder,
                                      seed=seed, options=options))
    ctx.max_seq_len = 512
    out, stats = [], []
    for i in range(0, len(samples), batch_size):
        res = ctx.decoder.run(ctx, samples[i : i + batch_size])
        out += res.outputs
        stats.append(res.extra.get("speculative"))
    return out, stats


@pytest.fixture(scope="module")
def greedy(registry, samples):
    return _outputs(registry, samples, 1)[0]


@pytest.mark.parametrize("batch_size", [1, 3])
@pytest.mark.parametrize("stack", [("layerskip",), ("sdpa", "static-kv", "layerskip"),
                                   ("sdpa", "static-kv", "compile", "layerskip")], ids="+".join)
@pytest.mark.parametrize("exit_layer,draft_len", [(1, 1), (1, 3), (1, 5), (2, 4)])
def test_greedy_self_speculation_equals_plain_greedy(registry, samples, greedy, stack, batch_size, exit_layer, draft_len):
    if "compile" in stack and (exit_layer, draft_len, batch_size) not in ((1, 3, 3), (2, 4, 1)):
        pytest.skip("two compiled cases are enough")
    out, stats = _outputs(registry, samples, batch_size, stack, exit_layer=exit_layer, draft_len=draft_len)
    assert out == greedy
    drafted = sum(s["drafted"] for s in stats)
    rate = sum(s["accepted"] for s in stats) / drafted
    if exit_layer == 2:  # E = N: the draft is the full model, every draft is accepted
        assert rate == 1.0
    else:  # random weights: the early exit disagrees often, so rejections are exercised
        assert rate < 0.9
        assert rate > 0 or batch_size > 1  # a batch keeps its rows' shortest accepted prefix


def test_layerskip_stats_reach_the_report(registry, tmp_path, capsys):
    assert main(["run", "llama/t-t", "--preset", "tiny", "--samples", "2", "--max-new-tokens", "8",
                 "--opt", "static-kv,layerskip", "--exit-layer", "1", "--draft-len", "3", "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "report.json").read_text())
    spec = doc["speculative"]
    assert spec["exit_layer"] == 1 and spec["draft_len"] == 3
    # each cycle emits its accepted drafts and one token of the full model; random weights reject some
    assert spec["tokens_per_cycle"] == pytest.approx(1 + spec["acceptance_rate"] * 3) and spec["acceptance_rate"] < 1
    assert spec["cycles"] >= 2 * 2  # 7 tokens after the first of each sample, at most 4 a cycle
    assert spec["draft_share"] + spec["verify_share"] == pytest.approx(1.0)
    assert "self-speculative: exit layer 1" in (tmp_path / "report.md").read_text()


@pytest.mark.parametrize("cache", ["dynamic", "static"])
def test_cache_after_rejections_equals_a_fresh_prefill(registry, samples, cache):
    """What speculation leaves in the cache is what prefilling its output would write, so a
    continued generation equals a fresh one."""
    stack = ("static-kv",) if cache == "static" else ()
    ctx = prepared(registry, RunConfig(workload="llama/t-t", preset="tiny", optimizations=stack))
    model, sample = ctx.instance.model, samples[0]
    res = speculate(model, [sample], exit_layer=1, draft_len=3, device="cpu", pad_id=0, max_seq_len=512)
    assert res.extra["speculative"]["accepted"] < res.extra["speculative"]["drafted"]  # there were rejections
    n = len(sample.input_ids) + MAX_NEW - 1  # positions the cache must hold: prompt + all tokens but the last
    spec_keys = [k[:, :, :n].clone() for k in model.cache.keys]
    # continue from the speculative cache with plain decode steps ...
    token, pos = torch.tensor([res.outputs[0][-1]]), torch.tensor(n)
    continued = []
    for _ in range(6):
        token = model.decode(token, pos).argmax(-1)
        continued.append(int(token))
        pos += 1
    # ... and compare with a fresh prefill of prompt + output
    ids = torch.tensor([list(sample.input_ids) + res.outputs[0][:-1]])
    model.setup(1, 512)
    model.prefill(ids)
    for a, b in zip(spec_keys, model.cache.keys):
        torch.testing.assert_close(a, b[:, :, :n], rtol=1e-4, atol=1e-5)
    fresh = generate(model, [TextSample(id="x", input_ids=sample.input_ids, max_new_tokens=MAX_NEW + 6)], greedy_pick,
                     device="cpu", pad_id=0, max_seq_len=512)
    assert fresh.outputs[0] == res.outputs[0] + continued


# --- sampling -------------------------------------------------------------------------------------


def test_rejection_sampling_draws_from_the_target_distribution():
    """Two drafts from q: the first emitted token follows p0, the second p1 and the bonus p2."""
    gen = torch.Generator().manual_seed(0)
    rows, vocab = 400_000, 5
    p = torch.tensor([[0.5, 0.2, 0.15, 0.1, 0.05], [0.05, 0.1, 0.15, 0.2, 0.5], [0.2, 0.2, 0.2, 0.2, 0.2]])
    q = torch.tensor([[0.1, 0.1, 0.2, 0.3, 0.3], [0.3, 0.3, 0.2, 0.1, 0.1]])
    drafts = torch.stack([torch.multinomial(q[i], rows, replacement=True, generator=gen) for i in range(2)], 1)
    agree, nxt = accept_sampled(drafts, q[None].expand(rows, 2, vocab), p[None].expand(rows, 3, vocab), gen)
    first = torch.where(agree > 0, drafts[:, 0], nxt[:, 0])
    second = torch.where(agree > 1, drafts[:, 1], nxt[:, 1])[agree >= 1]
    bonus = nxt[:, 2][agree == 2]
    for tokens, target in ((first, p[0]), (second, p[1]), (bonus, p[2])):
        freq = torch.bincount(tokens, minlength=vocab) / len(tokens)
        assert torch.allclose(freq, target, atol=0.01), (freq, target)
    accepted_first = agree.ge(1).float().mean()
    assert accepted_first == pytest.approx(float(torch.minimum(p[0], q[0]).sum()), abs=0.005)  # 0.55


def _toy_model():
    config = LlamaConfig(vocab_size=8, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    torch.manual_seed(0)
    hf = LlamaForCausalLM(config).eval()
    with torch.no_grad():  # sharp, input-dependent distributions: the early exit and the full model disagree
        for p in hf.parameters():
            if p.dim() > 1:
                p.normal_(0, 0.4)
    return HFCausalLM(hf)


def _chi2(a: torch.Tensor, b: torch.Tensor) -> float:
    """Two-sample chi-square statistic over categories (equal sample sizes)."""
    a, b = a.double(), b.double()
    used = (a + b) > 0
    return float(((a - b)[used] ** 2 / (a + b)[used]).sum())


CHI2_CRIT = 24.32  # chi-square, 7 degrees of freedom, p = 0.001


def _marginals(outputs: torch.Tensor) -> list[torch.Tensor]:
    return [torch.bincount(outputs[:, t], minlength=8) for t in range(outputs.shape[1])]


def test_sampled_self_speculation_matches_plain_sampling(monkeypatch):
    """Per-position token frequencies of 4000 sampled continuations: speculative vs plain."""
    model = _toy_model()
    prompt = [TextSample(id=str(i), input_ids=[1, 5, 2, 7], max_new_tokens=5) for i in range(4000)]
    plain = torch.tensor(generate(model, prompt, top_p_pick(1.0, 1.0, torch.Generator().manual_seed(1)),
                                  device="cpu", pad_id=0, max_seq_len=32).outputs)

    def spec_outputs(seed):
        r = speculate(model, prompt, exit_layer=1, draft_len=3, device="cpu", pad_id=0, max_seq_len=32,
                      sampling=(1.0, 1.0, torch.Generator().manual_seed(seed)))
        return torch.tensor(r.outputs)

    spec = spec_outputs(2)
    for t, (a, b) in enumerate(zip(_marginals(plain), _marginals(spec))):
        assert _chi2(a, b) < CHI2_CRIT, f"token {t}: {a.tolist()} vs {b.tolist()}"
    assert torch.equal(spec, spec_outputs(2))  # reproducible with a seed
    assert not torch.equal(spec, spec_outputs(3))

    # The test has power: keeping every draft (no rejection step) samples the early exit instead.
    import genaccel.llm.speculative as S

    def accept_all(drafts, q, p, generator):
        return torch.full(drafts.shape[:1], drafts.shape[1]), S.draw(p, generator)

    monkeypatch.setattr(S, "accept_sampled", accept_all)
    biased = spec_outputs(2)
    assert max(_chi2(a, b) for a, b in zip(_marginals(plain)[1:], _marginals(biased)[1:])) > 5 * CHI2_CRIT


def test_top_p_layerskip_is_seeded(registry, samples):
    a = _outputs(registry, samples, 3, ("static-kv", "layerskip"), decoder="top-p", seed=3, exit_layer=1)[0]
    b = _outputs(registry, samples, 3, ("static-kv", "layerskip"), decoder="top-p", seed=3, exit_layer=1)[0]
    assert a == b


# --- options, training and the sweep --------------------------------------------------------------


def test_bad_layerskip_options_are_clear(registry, samples):
    with pytest.raises(GenaccelError, match="exit layer 5 is out of range: the model has 2 layers"):
        _outputs(registry, samples[:1], 1, ("layerskip",), exit_layer=5)
    with pytest.raises(GenaccelError, match="layerskip replaces greedy or top-p decoding"):
        prepared(registry, RunConfig(workload="llama/t-t", preset="tiny", decoder="hf-generate", optimizations=("layerskip",)))


def test_train_then_sweep_then_run_from_the_checkpoint(tmp_path, capsys):
    ckpt = tmp_path / "ckpt"
    assert main(["train-layerskip", "llama/t-t", "--preset", "tiny", "--out", str(ckpt), "--train-steps", "4",
                 "--seq-len", "32", "--batch-size", "4", "--lr-warmup", "1"]) == 0
    info = json.loads((ckpt / "layerskip.json").read_text())
    assert info["trained"]["steps"] == 4 and len(info["history"]) == 4
    assert info["trained"]["dropout_rates"][0] == 0.0 and info["trained"]["dropout_rates"][-1] == pytest.approx(0.1)
    assert all(h["loss"] > 0 for h in info["history"])
    assert main(["layerskip-sweep", "llama/t-t", "--checkpoint", str(ckpt), "--samples", "1", "--max-new-tokens", "12",
                 "--exit-layers", "1", "--draft-lens", "2,3", "--save", "--out", str(tmp_path / "sweep")]) == 0
    printed = capsys.readouterr().out
    assert "best: exit layer 1" in printed and "| NO |" not in printed
    saved = json.loads((ckpt / "layerskip.json").read_text())
    assert saved["exit_layer"] == 1 and saved["draft_len"] in (2, 3) and "trained" in saved
    out = tmp_path / "run"
    assert main(["run", "llama/t-t", "--checkpoint", str(ckpt), "--samples", "1", "--max-new-tokens", "8",
                 "--opt", "layerskip", "--out", str(out)]) == 0
    spec = json.loads((out / "report.json").read_text())["speculative"]
    assert (spec["exit_layer"], spec["draft_len"]) == (saved["exit_layer"], saved["draft_len"])


def test_train_names_an_unknown_workload(capsys):
    assert main(["train-layerskip", "nope/x", "--out", "x"]) == 2
    assert "unknown workload 'nope/x'" in capsys.readouterr().err


def test_layer_dropout_and_exit_weights():
    from genaccel.llm.train import dropout_rates, exit_weights

    rates = dropout_rates(12, 0.2)
    assert rates[0] == 0 and rates[-1] == pytest.approx(0.2) and rates == sorted(rates)
    w = exit_weights(12, 1.0, step=1, rotation=4)
    assert set(w) == {1, 5, 9, 11} and sum(w.values()) == pytest.approx(1.0)
    assert exit_weights(12, 1.0, step=2, rotation=4).keys() == {2, 6, 10, 11}
