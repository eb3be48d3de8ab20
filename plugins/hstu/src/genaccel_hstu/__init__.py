"""genaccel plugin: HSTU generative recommendation on jagged user histories."""

from __future__ import annotations

from genaccel import OptimizationSpec, WorkloadSpec, hookimpl
from genaccel.roles import AttentionSwitch, BatchRunner, Compilable

from .workload import PRESETS, build_for


def _fused(ctx):
    ctx.instance.set_attention("fused")
    return "block-wise attention over each sequence's real length; bias built per block; no N×N tensor"


@hookimpl
def genaccel_register_workloads(register):
    for task, what in (("ranking", "engagement type of candidates appended to the history"),
                       ("retrieval", "next-item top-k against the item table")):
        register(WorkloadSpec(name=f"hstu/{task}", description=f"HSTU {task}: {what}", build=build_for(task),
                              presets=tuple(PRESETS), default_preset="small", default_decoder="nar",
                              roles=(BatchRunner, AttentionSwitch, Compilable),
                              capabilities=("hstu-attention", "quantize")))


@hookimpl
def genaccel_register_optimizations(register):
    register(OptimizationSpec(
        name="hstu-fused-attention",
        description="HSTU attention block by block over jagged sequences, bias fused, masked blocks skipped",
        stage="attention", requires="hstu-attention", apply=_fused,
    ))
