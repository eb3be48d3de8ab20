"""Built-in optimizations, usable by every workload that offers the capabilities they need."""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..registry import OptimizationSpec


def _sdpa(ctx):
    ctx.instance.set_attention("sdpa")
    return "attention through torch.nn.functional.scaled_dot_product_attention"


def _static_kv(ctx):
    ctx.instance.set_cache("static")
    return "KV cache preallocated to the run's cache length, written in place at device-side positions"


def _compile(ctx):
    applied = {spec.name for spec in ctx.stack.applied}
    mode = "default"
    if "cuda-graph" in applied:
        mode = "reduce-overhead"
    return ctx.instance.set_compile(mode)


def _cuda_graph(ctx):
    return ctx.instance.set_cuda_graph()


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
