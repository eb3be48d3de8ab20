"""genaccel plugin: HSTU generative recommendation on jagged user histories.

Registration is light: the workload's code (torch) is imported on first build.
"""

from __future__ import annotations

from genaccel.api import (
    AttentionRecord,
    BatchRunner,
    Compilable,
    OptimizationSpec,
    Quantizable,
    Role,
    WorkloadSpec,
    hookimpl,
)

from .presets import PRESETS


class HSTUAttention(Role):
    """HSTU's own attention kernels: ``dense`` (the baseline, padded), ``fused`` (block-wise over jagged
    sequences) or ``triton`` (the fused kernel on CUDA)."""

    capability = "hstu-attention"

    def set_attention(self, impl): ...


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
        # set_attention takes HSTU's own kernels (dense, fused), not sdpa: HSTUAttention, not AttentionSwitch
        register(WorkloadSpec(name=f"hstu/{task}", description=f"HSTU {task}: {what}",
                              build=f"genaccel_hstu.workload:build_{task}", presets=tuple(PRESETS),
                              default_preset="small", default_decoder="nar",
                              roles=(BatchRunner, HSTUAttention, Compilable, Quantizable, AttentionRecord),
                              unit="item"))


@hookimpl
def genaccel_register_optimizations(register):
    register(OptimizationSpec(
        name="hstu-fused-attention",
        description="HSTU attention block by block over jagged sequences, bias fused, masked blocks skipped",
        stage="attention", requires=HSTUAttention, apply=_fused,
    ))
