"""Built-in optimizations of diffusion workloads (``channels-last``, ``fused-qkv``).

Light: registering imports no torch; ``apply`` calls the workload's switches
(:class:`genaccel.denoise.LatentDiffusion`).
"""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..registry import OptimizationSpec


def _channels_last(ctx):
    return ctx.instance.set_channels_last()


def _fused_qkv(ctx):
    return ctx.instance.fuse_qkv()


@hookimpl
def genaccel_register_optimizations(register):
    register(OptimizationSpec(
        name="channels-last", stage="weights", requires="channels-last", apply=_channels_last,
        description="convolution weights and latents in channels-last (NHWC) memory layout",
    ))
    register(OptimizationSpec(
        name="fused-qkv", stage="weights", requires="fused-qkv", needs="sdpa", apply=_fused_qkv,
        description="query, key and value projections of each attention fused into one linear (SDPA attention)",
    ))
