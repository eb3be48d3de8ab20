"""Built-in optimizations, usable by every workload that offers the capabilities they need."""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..registry import OptimizationSpec


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


@hookimpl
def genaccel_register_optimizations(register):
    register(
        OptimizationSpec(
            name="sdpa",
            description="PyTorch scaled_dot_product_attention instead of eager matmul-softmax-matmul",
            stage="attention",
            requires="attention",
            apply=_sdpa,
        )
    )
    register(
        OptimizationSpec(
            name="static-kv",
            description="static KV cache, allocated once and written in place",
            stage="cache",
            requires="kv-cache",
            apply=_static_kv,
        )
    )
    register(
        OptimizationSpec(
            name="compile",
            description="torch.compile of the hot step (decode step for autoregressive models)",
            stage="compile",
            requires="compile",
            apply=_compile,
        )
    )
    register(
        OptimizationSpec(
            name="cuda-graph",
            description="capture the hot step in a CUDA graph and replay it",
            stage="graph",
            requires="cuda-graph",
            needs="static-kv",
            devices="cuda",
            apply=_cuda_graph,
        )
    )
    register(
        OptimizationSpec(
            name="layerskip",
            description="self-speculative decoding: early-exit drafts verified by the remaining layers",
            stage="algorithm",
            requires="early-exit",
            apply=_layerskip,
        )
    )
