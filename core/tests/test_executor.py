from types import SimpleNamespace

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


def _window(k):
    """The first ``k`` of 20 positions, their length symbolic when compiled."""
    n = torch.arange(20.0)[:k]
    torch._dynamo.mark_dynamic(n, 0)
    return n


def _dynamo_calls(ex, key):
    """Count the calls that go through the compiled function (dynamo) of ``ex``'s ``key`` from now on."""
    calls, compiled = [], ex._fns[key]

    def counted(*args):
        calls.append(1)
        return compiled(*args)

    ex._fns[key] = counted
    return calls


def test_skip_guards_calls_the_batchs_graph_directly():
    """After a key's first run since new_batch a default-mode CPU compile calls its graph without dynamo:
    the arguments (and a symbolic length) read at each call, what the step reaches otherwise (a weight)
    as the first run passed it, in-place changes to it seen; the outputs those of the eager step."""
    torch._dynamo.reset()
    counters.clear()
    holder = SimpleNamespace(w=torch.randn(8, 4))

    def step(x, n):
        return torch.tanh(x @ holder.w).sum(-1) + n.sum()

    ex = StepExecutor("cpu")
    ex.configure(compile="default", skip_guards=True)
    x = torch.randn(3, 8)
    torch.testing.assert_close(ex.run("k", step, x, _window(5)), step(x, _window(5)))  # compiled, guarded
    calls = _dynamo_calls(ex, "k")
    for k in (6, 9, 13):
        x = torch.randn(3, 8)
        torch.testing.assert_close(ex.run("k", step, x, _window(k)), step(x, _window(k)))
    holder.w.mul_(-2)  # in place: the graph reads the same tensor
    x = torch.randn(3, 8)
    torch.testing.assert_close(ex.run("k", step, x, _window(7)), step(x, _window(7)))
    assert calls == [] and ex._direct["k"] is not None and ex._backend.last is None  # no call's tensors held
    assert counters["stats"]["unique_graphs"] == 1

    # what the direct call still checks: the global state, and the arguments' dtype, gradient flag, fixed
    # sizes, symbolic sizes of at least 2
    direct, x = ex._direct["k"], torch.randn(3, 8)
    assert direct.accepts((x, _window(7)))
    with torch.no_grad():
        assert not direct.accepts((x, _window(7)))
    assert not direct.accepts((x.double(), _window(7)))
    assert not direct.accepts((x.requires_grad_(), _window(7)))
    assert not direct.accepts((torch.randn(4, 8), _window(7)))
    assert not direct.accepts((torch.randn(3, 8), torch.arange(20.0)[:1]))

    # arguments of another kind go through dynamo (here: a shape the graph was not built for, which the
    # guard-skipping stance refuses rather than run a wrong graph)
    with pytest.raises(RuntimeError, match="Recompilation"):
        ex.run("k", step, torch.randn(5, 8), _window(7))
    assert calls == [1]

    # a new batch evaluates the guards again and captures what the step reaches now
    holder.w = torch.randn(8, 4)
    ex.new_batch()
    x = torch.randn(3, 8)
    torch.testing.assert_close(ex.run("k", step, x, _window(4)), step(x, _window(4)))
    torch.testing.assert_close(ex.run("k", step, x, _window(8)), step(x, _window(8)))
    assert calls == [1, 1]


def test_no_direct_call_for_one_tensor_passed_twice():
    """Dynamo gives a tensor passed as two arguments one graph input: a later call with two tensors would
    read one of them for both, so such a step stays on dynamo's path."""
    torch._dynamo.reset()
    ex = StepExecutor("cpu")
    ex.configure(compile="default", skip_guards=True)

    def step(a, b):
        return a * 2 + b

    x = torch.randn(4)
    torch.testing.assert_close(ex.run("k", step, x, x), x * 3)
    assert ex._direct["k"] is None


def test_skip_guards_without_a_direct_call_skips_guard_evaluation():
    """A step whose return value is not one of its graph's outputs (here a tuple) runs through dynamo,
    under the guard-skipping stance after a batch's first step."""
    torch._dynamo.reset()
    ex = StepExecutor("cpu")
    ex.configure(compile="default", skip_guards=True)
    counters.clear()

    def probe(x):
        return x + 1, x * 2

    stances = []
    real = torch.compiler.set_stance

    def spy(*args, **kwargs):
        stances.append(kwargs.get("skip_guard_eval_unsafe"))
        return real(*args, **kwargs)

    x = torch.zeros(3)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.compiler, "set_stance", spy)
        assert torch.equal(ex.run("k", probe, x)[0], x + 1)
        assert stances == [] and ex._direct["k"] is None  # the first step evaluates the guards
        assert torch.equal(ex.run("k", probe, x + 1)[1], x + 2)
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
