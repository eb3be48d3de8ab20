"""The checks that need a CUDA device, selected by ``nox -s gpu`` (marker ``gpu``) and skipped
without one: greedy equality under CUDA graphs (Llama, Chameleon, Seamless), the vocoder's graph,
autoquant's CUDA-only candidates (int4, float8) and HSTU's fused attention on CUDA.  Tiny presets:
seconds each on one GPU."""

import wave

import numpy as np
import pytest
import torch
from genaccel.run.config import RunConfig
from genaccel.testing import measure

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def _run(registry, workload, stack, *, decoder="greedy", dtype="float32", **kw):
    kw.setdefault("samples", 2)
    kw.setdefault("max_new_tokens", 12)
    case = measure(registry, RunConfig(workload=workload, preset="tiny", decoder=decoder, optimizations=stack,
                                        device="cuda", dtype=dtype, warmup=1, **kw), progress=False)
    assert case.ok and not case.skipped_optimizations, (case.error, case.skipped_optimizations)
    return case


def _ids(case):
    return [r.output_ids for r in case.samples]


@pytest.mark.parametrize("workload, decoder", [("llama/t-t", "greedy"), ("chameleon/it-t", "greedy"),
                                               ("seamless/t-t", "beam")])
def test_greedy_and_beam_equal_under_cuda_graph(registry, workload, decoder):
    base = _run(registry, workload, ("sdpa", "static-kv"), decoder=decoder)
    graph = _run(registry, workload, ("sdpa", "static-kv", "cuda-graph"), decoder=decoder)
    assert _ids(graph) == _ids(base)


def test_llama_compiled_cuda_graph_equals_eager(registry):
    base = _run(registry, "llama/t-t", ())
    graph = _run(registry, "llama/t-t", ("sdpa", "static-kv", "compile", "cuda-graph"))
    assert _ids(graph) == _ids(base)


def _audio(path):
    with wave.open(str(path), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768


def test_vocoder_graph_keeps_the_audio(registry, tmp_path):
    stack = ("sdpa", "static-kv", "compile-vocoder")
    plain = _run(registry, "seamless/t-s", stack, decoder="beam", out_dir=str(tmp_path / "a"))
    graph = _run(registry, "seamless/t-s", (*stack, "cuda-graph-vocoder"), decoder="beam", out_dir=str(tmp_path / "b"))
    assert _ids(graph) == _ids(plain)
    for a, b in zip(plain.samples, graph.samples):
        wa, wb = _audio(a.extra["files"][0]), _audio(b.extra["files"][0])
        assert wa.shape == wb.shape and float(np.abs(wa - wb).max()) < 1e-2


@pytest.mark.parametrize("dtype", ["bfloat16"])
def test_autoquant_times_the_cuda_candidates(registry, dtype):
    case = _run(registry, "llama/t-t", ("sdpa", "static-kv", "autoquant"), dtype=dtype, samples=1)
    note = case.optimization_notes["autoquant"]
    assert "int4-weight-only" in note["summary"] and "float8-weight-only" in note["summary"]
    timed = {c for d in note["decisions"] for c in d["timings"]}
    assert {"int4-weight-only", "float8-weight-only"} & (timed | set(note["unavailable"]))
    assert case.accuracy is not None  # a lossy stack's accuracy impact


def test_hstu_fused_on_cuda_equals_dense(registry):
    dense = _run(registry, "hstu/ranking", (), decoder=None, samples=2, max_new_tokens=None)
    fused = _run(registry, "hstu/ranking", ("hstu-fused-attention",), decoder=None, samples=2, max_new_tokens=None)
    assert "Triton" in fused.optimization_notes["hstu-fused-attention"]
    for a, b in zip(dense.samples, fused.samples):
        torch.testing.assert_close(torch.tensor(b.output_ids, dtype=torch.float64),
                                   torch.tensor(a.output_ids, dtype=torch.float64), rtol=1e-3, atol=1e-3)
