"""A compiled step's graph called without dynamo: the executor's guard-free path for ``skip_guards``.

At every call of a compiled function dynamo finds its cached graph (evaluating guards over every
tensor the graph reads: each parameter, buffer and cache tensor, ~230 for the small Llama's decode
step) and gathers the graph's inputs from the frame.  For that step, ~9 ms on 2 CPU cores, this is
~1 ms, even with ``skip_guard_eval_unsafe`` (which still checks every tensor's guards).

A step whose later calls in a batch differ from its first only in its arguments' tensor values and
symbolic sizes (the executor's ``skip_guards`` contract) can instead call the compiled graph itself:

- :class:`CapturingInductor` is the dynamo backend (Inductor's ``compile_fx`` with the executor's
  options) whose compiled graphs record the inputs and outputs of their last call;
- after a guarded call, :meth:`DirectCall.capture` reads which graph ran: every graph input whose
  source is not one of the step's arguments (weights, caches, constants reached through ``self`` or
  globals) is kept as that call passed it; the others are read from each call's arguments (the
  argument itself, or one of its sizes or strides); the step's return value must be one of the
  graph's outputs.  Anything else (an input nested inside an argument, a return value built from
  several outputs, a graph that did not run whole) leaves the step on dynamo's path.
- :meth:`DirectCall.accepts` is the guard that remains: the same global state (grad mode, autocast),
  the arguments' kinds, dtypes, devices, gradient flags, fixed sizes and strides, symbolic sizes of at
  least 2.  Other bounds dynamo may have put on a symbolic size are not checked: the step's owner keeps
  it in range (the static cache's ``window`` refuses a length past the cache).

So within a batch the tensors a step reaches through ``self`` must stay the same objects (changed in
place, as the static KV cache's buffers, they are read anew; an attribute bound to another tensor is
seen from the next batch: the owner calls ``new_batch`` when it rebinds one, as Seq2SeqLM's prefill).
What dynamo's bytecode does around the graph is not replayed: attributes the step sets on Python
objects (the static cache's write position) keep the values of the batch's first call, which is
sound for state that the step itself sets before it reads it, as the static cache's ``target``.
"""

from __future__ import annotations

import inspect

import torch
from torch._dynamo.source import ChainedSource, LocalSource, TensorProperty, TensorPropertySource
from torch.fx.experimental.symbolic_shapes import free_symbols


class CapturingInductor:
    """A dynamo backend: Inductor with ``options`` (``torch.compile``'s ``options``).  A compiled graph called
    while :attr:`armed` records in :attr:`last` what it knows of its inputs (read at compile time: dynamo
    drops it after), the inputs and its outputs, and disarms; otherwise it records nothing (so nothing
    holds a call's tensors)."""

    compiler_name = "inductor"  # what dynamo's logs call it

    def __init__(self, options: dict):
        self.options = options
        self.armed = False
        self.last: tuple | None = None  # (inputs' descriptions, compiled function, inputs, outputs)

    def __call__(self, gm: torch.fx.GraphModule, example_inputs):
        from torch._inductor.compile_fx import compile_fx

        described = [_describe(node) for node in gm.graph.find_nodes(op="placeholder")]
        compiled = compile_fx(gm, example_inputs, config_patches=self.options)

        def run(*inputs):
            out = compiled(*inputs)
            if self.armed:
                self.armed, self.last = False, (described, compiled, inputs, out)
            return out

        return run


def _describe(node: torch.fx.Node) -> tuple | None:
    """A graph input's dynamo source and the size symbols of its example value; None where dynamo passes it
    transformed (a Python float as a tensor) or left no record."""
    grapharg = node.meta.get("grapharg")
    if grapharg is None or getattr(grapharg, "pass_arg_as_tensor", False):
        return None
    return grapharg.source, free_symbols(node.meta.get("example_value"))


def _global_state() -> tuple:
    return (torch.is_grad_enabled(), torch.is_inference_mode_enabled(), torch.get_autocast_dtype("cpu"),
            torch.is_autocast_enabled("cpu"), torch.get_default_dtype())


class DirectCall:
    """One compiled graph called with the inputs of a step's guarded call, its arguments' replaced."""

    def __init__(self, compiled, fixed: list, slots: list, output: int, kinds: list, state: tuple):
        self.compiled, self.fixed, self.slots, self.output = compiled, fixed, slots, output
        self.kinds, self.state = kinds, state

    @classmethod
    def capture(cls, backend: CapturingInductor, fn, args: tuple, result) -> DirectCall | None:
        """The direct call of the graph ``backend`` ran (armed) for ``fn(*args)``, which returned ``result``,
        or None where the step cannot be called so (module docstring)."""
        last, backend.last, backend.armed = backend.last, None, False
        if last is None or not isinstance(result, torch.Tensor):
            return None
        described, compiled, inputs, outs = last
        output = next((j for j, o in enumerate(outs) if o is result), None)
        try:
            params = list(inspect.signature(fn).parameters.values())
        except (TypeError, ValueError):
            return None
        if output is None or len(described) != len(inputs) or None in described or any(
                p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params):
            return None
        position = {p.name: i for i, p in enumerate(params[:len(args)])}
        slots = []  # (input, argument, None or the property read, its dimension)
        from_args, fixed_symbols = set(), set()  # size symbols of the inputs read from the arguments, of the others
        for i, (source, symbols) in enumerate(described):
            root = source
            while isinstance(root, ChainedSource):
                root = root.base
            if not (isinstance(root, LocalSource) and root.local_name in position):
                fixed_symbols |= symbols  # not from an argument: kept as passed
                continue
            from_args |= symbols
            if isinstance(source, LocalSource):
                slots.append((i, position[source.local_name], None, None))
            elif (isinstance(source, TensorPropertySource) and isinstance(source.base, LocalSource)
                  and source.prop in (TensorProperty.SIZE, TensorProperty.STRIDE)):
                slots.append((i, position[source.base.local_name], source.prop, source.idx))
            else:
                return None
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        slotted = {i for i, *_ in slots}
        kept = {id(t) for i, t in enumerate(inputs) if isinstance(t, torch.Tensor) and i not in slotted}
        if from_args & fixed_symbols or len({id(t) for t in tensors}) < len(tensors) or any(id(t) in kept for t in tensors):
            return None  # an argument's size tied to a kept input's, or one tensor passed twice (dynamo keeps one)
        kinds = [cls._kind(a, [(p, d) for _, arg, p, d in slots if arg == n]) for n, a in enumerate(args)]
        if None in kinds:
            return None
        return cls(compiled, list(inputs), slots, output, kinds, _global_state())

    @staticmethod
    def _kind(arg, read: list) -> tuple | None:
        """What a later argument must share with ``arg``, of which the graph reads ``read`` ((None, None):
        the argument itself; (property, dimension): a symbolic size or stride): a tensor's dtype, device,
        gradient flag, fixed sizes and strides (with a symbolic size: contiguity); a value the graph takes
        as an input (a symbolic int), its type; another value (one the graph was specialized on), itself.
        None: a strided tensor of symbolic size, left to dynamo."""
        if not isinstance(arg, torch.Tensor):
            return ("type", type(arg)) if (None, None) in read else ("value", type(arg), arg)
        sizes = tuple(None if (TensorProperty.SIZE, d) in read else s for d, s in enumerate(arg.shape))
        if None in sizes:
            if not arg.is_contiguous():
                return None
            strides = None
        else:
            strides = tuple(None if (TensorProperty.STRIDE, d) in read else s for d, s in enumerate(arg.stride()))
        return ("tensor", arg.dtype, arg.device, arg.requires_grad, sizes, strides)

    def accepts(self, args: tuple) -> bool:
        """Whether ``args`` (and the global state) are of the kinds the graph was captured with: a tensor's
        dtype, device, gradient flag, fixed sizes and strides (or contiguity), its symbolic sizes at least 2
        (dynamo's graphs for sizes 0 and 1 are others)."""
        if len(args) != len(self.kinds) or _global_state() != self.state:
            return False
        for arg, kind in zip(args, self.kinds):
            if kind[0] != "tensor":
                if type(arg) is not kind[1] or (kind[0] == "value" and arg != kind[2]):
                    return False
                continue
            _, dtype, device, grad, sizes, strides = kind
            if (not isinstance(arg, torch.Tensor) or arg.dtype != dtype or arg.device != device
                    or arg.requires_grad != grad or arg.dim() != len(sizes)):
                return False
            if any(arg.shape[d] < 2 if s is None else s != arg.shape[d] for d, s in enumerate(sizes)):
                return False
            if strides is None:
                if not arg.is_contiguous():
                    return False
            elif any(s is not None and s != arg.stride(d) for d, s in enumerate(strides)):
                return False
        return True

    def __call__(self, args: tuple):
        inputs = list(self.fixed)
        for i, arg, prop, d in self.slots:
            a = args[arg]
            inputs[i] = a if prop is None else a.size(d) if prop is TensorProperty.SIZE else a.stride(d)
        return self.compiled(*inputs)[self.output]
