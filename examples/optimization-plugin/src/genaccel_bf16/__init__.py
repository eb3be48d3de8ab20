"""An optimization plugin in one file: cast a workload's model to bfloat16.

genaccel calls ``genaccel_register_optimizations`` once at start-up; ``register`` takes an
``OptimizationSpec``.  ``apply(ctx)`` changes ``ctx.instance`` in place and returns a note for
the report.  Because the spec says ``lossless=False``, every run with this optimization also
reports its accuracy impact against the unoptimized model.

A plugin imports only :mod:`genaccel.api`.  It ``requires`` roles: a workload that plays
``Quantizable`` offers ``module``, the ``nn.Module`` whose weights may change format, checked when the
workload is built.  Registering must stay light (``genaccel list`` loads every plugin): import torch
inside ``apply``, or name a heavier module by import string (``apply="my_plugin.impl:apply"``).
"""

from genaccel.api import OptimizationSpec, Quantizable, hookimpl


def _to_bf16(ctx):
    import torch

    module = ctx.instance.module  # the role Quantizable's member
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
            requires=Quantizable,  # workloads that offer their module's weights for other formats
            lossless=False,
            apply=_to_bf16,
        )
    )
