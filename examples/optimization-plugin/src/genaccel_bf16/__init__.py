"""An optimization plugin in one file: cast a workload's model to bfloat16.

genaccel calls ``genaccel_register_optimizations`` once at start-up; ``register`` takes an
``OptimizationSpec``.  ``apply(ctx)`` changes ``ctx.instance`` in place and returns a note for
the report.  Because the spec says ``lossless=False``, every run with this optimization also
reports its accuracy impact against the unoptimized model.

Registering must stay light (``genaccel list`` loads every plugin): import torch inside
``apply``, or name a heavier module by import string (``apply="my_plugin.impl:apply"``).
"""

from genaccel.errors import GenaccelError
from genaccel.hookspecs import hookimpl
from genaccel.registry import OptimizationSpec


def _to_bf16(ctx):
    import torch

    module = ctx.instance.module  # every workload has one (role Workload)
    if not isinstance(module, torch.nn.Module):
        raise GenaccelError(f"bf16-weights: workload {ctx.workload.name} exposes no torch module")
    before = sum(p.numel() * p.element_size() for p in module.parameters())
    module.to(torch.bfloat16)
    after = sum(p.numel() * p.element_size() for p in module.parameters())
    return f"weights cast to bfloat16: {before / 2**20:.1f} MiB -> {after / 2**20:.1f} MiB"


@hookimpl
def genaccel_register_optimizations(register):
    register(
        OptimizationSpec(
            name="bf16-weights",
            description="cast the model's weights (and so its compute) to bfloat16",
            stage="weights",  # applied before attention, cache, compile, graph and algorithm steps
            requires="quantize",  # workloads that offer their linear layers for weight formats
            lossless=False,
            apply=_to_bf16,
        )
    )
