"""One way to run a step function with fixed shapes: eager, compiled, or replayed from CUDA graphs.

Every compiled or graphed step in genaccel goes through a :class:`StepExecutor` (an LLM's decode,
draft and verify steps, Seamless's decoder step, KV reorder and vocoder, Chameleon's VQGAN
decoder, HSTU's layers); nothing else calls ``torch.compile`` or ``torch.cuda.CUDAGraph``.

``run(key, fn, *args)`` calls ``fn(*args)`` as configured:

- eager: ``fn(*args)``;
- compile: ``torch.compile(fn, mode, fullgraph, dynamic)``, built once per ``key`` (the first
  ``fn`` given for a key is the one compiled: a key names one computation);
- cuda-graph: ``fn`` run eagerly twice on a side stream (warm-up), captured in a CUDA graph per
  ``key`` and argument shapes, then replayed: the arguments are copied into the captured inputs
  and the captured output is returned (the same tensor at every replay);
- compile+cuda-graph: ``torch.compile(fn, mode="reduce-overhead")``, torch's CUDA graph trees.

``skip_guards``: for a step whose later calls in a batch differ from its first only in tensor values
(and symbolic sizes), and whose Python side effects are only read by the step itself.  After a key's
first run since :meth:`new_batch`, a ``default``-mode CPU compile calls the graph that run used
directly (:mod:`.direct`: no dynamo at all, ~1 ms a step less for the small Llama's decode step on
2 CPU cores); elsewhere, or where the arguments' kinds changed, the compiled function runs under
``torch.compiler.set_stance("default", skip_guard_eval_unsafe=True)``, which evaluates only the guards
that tell a function's graphs apart (unsafe, torch warns, where the contract does not hold).

``cpp_wrapper`` (a ``default``-mode compile on CPU): Inductor calls the step's kernels from a
generated C++ function instead of Python; a decode step of ~100 small kernels then saves ~1.5 ms
(Seamless small, 5 beam rows: 7.1 -> 5.6 ms a step on a 2-core x86 machine), at more compile time.

A ``default``-mode compile on CPU also merges the native GEMV calls that read the same input into one
call (:mod:`.gemv_groups`: a layer's query, key and value projections; its gate and up projections).

Compile time is kept apart: ``build_s`` sums the seconds of the runs that compiled a key or
captured a graph (a recompile for new shapes inside a compiled function is not separated).  The
runner's warm-up generations build every graph before the timed ones.  Compiled artifacts are
kept across processes in genaccel's cache directory (:mod:`.compile_cache`): a second process
compiling the same step loads them instead of generating and building C++ again.
"""

from __future__ import annotations

import torch

from .clock import synced_now
from .compile_cache import use_genaccel_dir
from .direct import CapturingInductor, DirectCall
from .gemv_groups import GroupGemvs


class StepExecutor:
    def __init__(self, device: str = "cpu"):
        self.device = str(device)
        self.compile: str | None = None
        self.cuda_graph = False
        self.fullgraph, self.dynamic, self.skip_guards, self.cpp_wrapper = True, False, False, False
        self._fns: dict[object, object] = {}  # key -> compiled function
        self._graphs: dict[tuple, tuple] = {}  # (key, argument shapes) -> (graph, inputs, output)
        self._warm: set = set()  # keys run since the last new_batch (their guards were evaluated)
        self._backend: CapturingInductor | None = None  # the backend of the compiles called directly
        self._direct: dict[object, DirectCall | None] = {}  # key -> its graph called without dynamo
        self.build_s = 0.0  # seconds of the runs that compiled a key or captured a graph

    def configure(self, *, compile: str | None = None, cuda_graph: bool = False, fullgraph: bool = True,
                  dynamic: bool | None = False, skip_guards: bool = False, cpp_wrapper: bool = False) -> None:
        """``compile``: a ``torch.compile`` mode ("default", "reduce-overhead", ...) or None (eager).
        Drops what was built under the previous settings."""
        if cuda_graph and torch.device(self.device).type != "cuda":
            raise ValueError(f"CUDA graphs need a CUDA device, not {self.device!r}")
        self.compile, self.cuda_graph = compile, cuda_graph
        self.fullgraph, self.dynamic, self.skip_guards = fullgraph, dynamic, skip_guards
        self.cpp_wrapper = cpp_wrapper and compile == "default" and torch.device(self.device).type == "cpu"
        self._drop()

    @property
    def mode(self) -> str:
        if self.compile and self.cuda_graph:
            return "compile+cuda-graph"
        return "compile" if self.compile else "cuda-graph" if self.cuda_graph else "eager"

    def run(self, key, fn, *args):
        """``fn(*args)``, eager, compiled or replayed from a CUDA graph per argument shapes."""
        if self.compile is None:
            return self._replay(key, fn, args) if self.cuda_graph else fn(*args)
        step = self._fns.get(key)
        if step is None:
            step = self._fns[key] = self._compiled(fn)
            t0 = synced_now(self.device)
            out = self._guarded(key, step, fn, args)
            self.build_s += synced_now(self.device) - t0
            return out
        if self.skip_guards and key in self._warm:
            direct = self._direct.get(key)
            if direct is not None and direct.accepts(args):
                return direct(args)
            with torch.compiler.set_stance("default", skip_guard_eval_unsafe=True):
                return step(*args)
        return self._guarded(key, step, fn, args)

    def _guarded(self, key, step, fn, args):
        """``step(*args)`` through dynamo's guards; the graph it ran is captured for direct calls."""
        if self._backend is not None:
            self._backend.armed, self._backend.last = True, None
        out = step(*args)
        self._warm.add(key)
        if self._backend is not None:  # the function compiled for the key (its arguments' names)
            compiled_fn = getattr(step, "_torchdynamo_orig_callable", fn)
            self._direct[key] = DirectCall.capture(self._backend, compiled_fn, args, out)
        return out

    def new_batch(self) -> None:
        """The next run of each key evaluates dynamo's guards (they choose the batch's graph)."""
        self._warm.clear()
        self._direct.clear()

    def reset(self) -> None:
        """Drop compiled functions, graphs and dynamo's caches: everything is rebuilt on next use."""
        self._drop()
        torch._dynamo.reset()

    def _drop(self) -> None:
        self._fns.clear()
        self._graphs.clear()
        self._warm.clear()
        self._direct.clear()
        self._backend = None

    def _compiled(self, fn):
        use_genaccel_dir()
        if self.cuda_graph:  # torch's CUDA graph trees: one graph per shape, inputs copied in
            return torch.compile(fn, mode="reduce-overhead", fullgraph=self.fullgraph, dynamic=self.dynamic)
        if self.compile == "default" and torch.device(self.device).type == "cpu":
            # options replace the mode: "default" is the mode without options
            options = {"post_grad_custom_post_pass": GroupGemvs(), "cpp_wrapper": self.cpp_wrapper}
            if self.skip_guards and self.fullgraph:  # one graph per call, called directly after the batch's first
                self._backend = self._backend or CapturingInductor(options)
                return torch.compile(fn, backend=self._backend, fullgraph=True, dynamic=self.dynamic)
            return torch.compile(fn, options=options, fullgraph=self.fullgraph, dynamic=self.dynamic)
        return torch.compile(fn, mode=self.compile, fullgraph=self.fullgraph, dynamic=self.dynamic)

    def _replay(self, key, fn, args):
        """Capture eager ``fn`` in a CUDA graph per argument shapes and replay it."""
        gkey = (key, *(tuple(a.shape) for a in args))
        entry = self._graphs.get(gkey)
        if entry is None:
            t0 = synced_now(self.device)
            with torch.cuda.device(torch.device(self.device)):
                static_args = [a.clone() for a in args]
                stream = torch.cuda.Stream()
                stream.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(stream):
                    for _ in range(2):  # same inputs: a step's in-place writes (cache positions) are idempotent
                        fn(*static_args)
                torch.cuda.current_stream().wait_stream(stream)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    static_out = fn(*static_args)
            entry = self._graphs[gkey] = (graph, static_args, static_out)
            self.build_s += synced_now(self.device) - t0
        graph, static_args, static_out = entry
        for buf, a in zip(static_args, args):
            buf.copy_(a)
        graph.replay()
        return static_out


class CompiledSteps:
    """The ``set_compile`` and ``set_cuda_graph`` members (roles Compilable, CUDAGraphable) of a workload
    whose hot steps all run through ``self.executor``, a :class:`StepExecutor`: fullgraph with static
    shapes.  ``compiled_steps`` names those steps in the notes the report shows."""

    compile_mode: str | None = None
    compiled_steps = "the workload's steps"

    def set_compile(self, mode: str) -> str:
        self.compile_mode = mode
        self.executor.configure(compile=mode, fullgraph=True, dynamic=False)
        return f"{self.compiled_steps} compiled through the step executor (mode={mode}, fullgraph, static shapes)"

    def set_cuda_graph(self) -> str:
        self.executor.configure(compile=self.compile_mode, cuda_graph=True)
        return f"{self.compiled_steps} replayed from CUDA graphs per shape (step executor)"
