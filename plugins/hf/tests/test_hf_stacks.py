"""What else applies to every architecture: LayerSkip's self-speculative decoding is exact (its draft and
verify spans keep the sliding windows and soft-caps), the lossy stacks and bfloat16 report their
accuracy impact, and the attention an architecture refuses is a clear error."""

import pytest
from genaccel.testing import RunConfig, measure, one_line_error, prepared

MAX_NEW = 12


def _outputs(registry, path, prompts, stack=(), **options):
    ctx = prepared(registry, RunConfig(workload="hf/t-t", checkpoint=str(path), data=str(prompts),
                                       optimizations=stack, options=options))
    ctx.max_seq_len = 128
    return ctx.decoder.run(ctx, ctx.instance.make_samples(3, seed=0, max_new_tokens=MAX_NEW)).outputs


@pytest.mark.parametrize("arch", ["mistral", "qwen2", "gemma2", "phi3"])
@pytest.mark.parametrize("stack", [("layerskip",), ("sdpa", "static-kv", "layerskip")], ids="+".join)
def test_self_speculation_equals_greedy(registry, folder, prompts, arch, stack):
    path = folder(arch)
    assert _outputs(registry, path, prompts, stack, exit_layer=1, draft_len=3) == _outputs(registry, path, prompts)


@pytest.mark.parametrize("arch", ["gemma2", "phi3"])
def test_lossy_stacks_and_bfloat16_report_accuracy(registry, folder, prompts, arch):
    config = RunConfig(workload="hf/t-t", checkpoint=str(folder(arch)), data=str(prompts), samples=2, batch_size=2,
                       max_new_tokens=6, warmup=0, dtype="bfloat16", optimizations=("int8-weight-only",))
    case = measure(registry, config, progress=False)
    assert case.status == "ok" and case.optimizations == ["int8-weight-only"]
    agreement = case.accuracy["token_agreement"]
    assert 0.0 <= agreement <= 1.0 and case.accuracy["mean_kl"] >= 0.0


def test_an_attention_the_architecture_refuses_is_a_clear_error(registry, folder, prompts):
    ctx = prepared(registry, RunConfig(workload="hf/t-t", checkpoint=str(folder("gemma2")), data=str(prompts)))
    assert "Gemma 2 takes attention eager, not 'sdpa'" in one_line_error(ctx.instance.model.set_attention, "sdpa")
