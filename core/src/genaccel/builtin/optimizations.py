"""Built-in optimizations, usable by every workload that offers the capabilities they need.

Registered by :mod:`genaccel.builtin.registration`; ``layerskip`` reads its options
``exit_layer`` and ``draft_len`` from ``ctx.config.options``.
"""

from __future__ import annotations


def _sdpa(ctx):
    ctx.instance.set_attention("sdpa")
    return "attention through torch.nn.functional.scaled_dot_product_attention"


def _static_kv(ctx):
    ctx.instance.set_cache("static")
    return ("KV cache preallocated to the run's cache length, written in place at device-side positions; "
            "a decode step reads its filled positions only (all of them under CUDA graphs)")


def _compile(ctx):
    applied = {spec.name for spec in ctx.stack.applied}
    mode = "default"
    if "cuda-graph" in applied:
        mode = "reduce-overhead"
    return ctx.instance.set_compile(mode)


def _cuda_graph(ctx):
    return ctx.instance.set_cuda_graph()


def _layerskip(ctx):
    from ..errors import GenaccelError
    from ..speculative import SelfSpeculative
    from .decoders import Greedy, TopP

    current = ctx.decoder
    if isinstance(current, SelfSpeculative):
        decoder = current
    elif isinstance(current, TopP):
        decoder = SelfSpeculative(sampling=True, temperature=current.temperature, top_p=current.top_p)
    elif isinstance(current, Greedy):
        decoder = SelfSpeculative()
    else:
        raise GenaccelError(
            f"layerskip replaces greedy or top-p decoding, not decoder {ctx.config.decoder!r}; "
            "drop --decoder or use --decoder greedy|top-p"
        )
    ctx.decoder = decoder
    e, k = decoder.settings(ctx)
    mode = "top-p with rejection sampling" if decoder.sampling else "greedy, exact"
    return f"self-speculative decoding ({mode}): draft {k} tokens with layers [0, {e}), verify with [{e}, {ctx.instance.model.num_layers})"
