import pytest
import torch
from genaccel.engine.executor import StepExecutor
from torch._dynamo.utils import counters


def _step(x, w):
    return torch.tanh(x @ w).sum(-1)


def test_eager_and_compiled_agree_and_compile_builds_one_graph_per_key():
    torch._dynamo.reset()
    counters.clear()
    x, w = torch.randn(2, 8), torch.randn(8, 4)
    eager = StepExecutor("cpu")
    assert eager.mode == "eager"
    compiled = StepExecutor("cpu")
    compiled.configure(compile="default")
    assert compiled.mode == "compile"
    for _ in range(3):
        torch.testing.assert_close(compiled.run("a", _step, x, w), eager.run("a", _step, x, w))
    assert counters["stats"]["unique_graphs"] == 1
    assert compiled.build_s > 0 and eager.build_s == 0  # compile time kept apart
    compiled.run("b", lambda x, w: _step(x, w) * 2, x, w)  # another key: another computation
    assert counters["stats"]["unique_graphs"] == 2 and len(compiled._fns) == 2
    compiled.reset()
    assert not compiled._fns


def test_skip_guards_after_a_batchs_first_step():
    """After a key's first run since new_batch the step runs without evaluating dynamo's guards."""
    torch._dynamo.reset()
    ex = StepExecutor("cpu")
    ex.configure(compile="default", skip_guards=True)
    counters.clear()

    def probe(x):
        return x + 1

    stances = []
    real = torch.compiler.set_stance

    def spy(*args, **kwargs):
        stances.append(kwargs.get("skip_guard_eval_unsafe"))
        return real(*args, **kwargs)

    x = torch.zeros(3)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.compiler, "set_stance", spy)
        assert torch.equal(ex.run("k", probe, x), x + 1)
        assert stances == []  # the first step evaluates the guards
        assert torch.equal(ex.run("k", probe, x + 1), x + 2)
        assert stances == [True]
        ex.new_batch()
        ex.run("k", probe, x)
        assert stances == [True]  # a new batch's first step evaluates them again
        ex.run("k", probe, x)
        assert stances == [True, True]
    assert counters["stats"]["unique_graphs"] == 1


def test_cuda_graph_needs_cuda():
    with pytest.raises(ValueError, match="CUDA device"):
        StepExecutor("cpu").configure(cuda_graph=True)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
def test_cuda_graph_replays_per_shape():
    ex = StepExecutor("cuda")
    ex.configure(cuda_graph=True)
    assert ex.mode == "cuda-graph"
    w = torch.randn(8, 4, device="cuda")
    for rows in (2, 2, 3):
        x = torch.randn(rows, 8, device="cuda")
        torch.testing.assert_close(ex.run("a", _step, x, w), _step(x, w))
    assert len(ex._graphs) == 2
