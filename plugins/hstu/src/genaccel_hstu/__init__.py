"""genaccel plugin: HSTU generative recommendation on jagged user histories.

Registration is light: the workload's code (torch) is imported on first build.
"""

from __future__ import annotations

from genaccel.hookspecs import hookimpl
from genaccel.registry import OptimizationSpec, WorkloadSpec
from genaccel.roles import BatchRunner, Compilable

PRESETS = ("tiny", "small", "paper")  # genaccel_hstu.workload.PRESETS


def _fused(ctx):
    from .triton_attention import available

    if available(ctx.device) and ctx.device != "cpu":  # the study's fast path: a Triton kernel on CUDA
        ctx.instance.set_attention("triton")
        return ("Triton kernel: one program per query block, sequence and head over the real length; bias "
                "gathered per block; no N×N tensor")
    ctx.instance.set_attention("fused")
    return "block-wise attention over each sequence's real length; bias built per block; no N×N tensor"


@hookimpl
def genaccel_register_workloads(register):
    for task, what in (("ranking", "engagement type of candidates appended to the history"),
                       ("retrieval", "next-item top-k against the item table")):
        # set_attention takes HSTU's own kernels (dense, fused), not sdpa: capability hstu-attention, no AttentionSwitch
        register(WorkloadSpec(name=f"hstu/{task}", description=f"HSTU {task}: {what}",
                              build=f"genaccel_hstu.workload:build_{task}", presets=PRESETS, default_preset="small",
                              default_decoder="nar", roles=(BatchRunner, Compilable),
                              capabilities=("hstu-attention", "quantize"), unit="item"))


@hookimpl
def genaccel_register_optimizations(register):
    register(OptimizationSpec(
        name="hstu-fused-attention",
        description="HSTU attention block by block over jagged sequences, bias fused, masked blocks skipped",
        stage="attention", requires="hstu-attention", apply=_fused,
    ))
