"""genaccel plugin: Code Llama code completion (workload ``llama/t-t``)."""

from __future__ import annotations

from genaccel import WorkloadSpec, hookimpl
from genaccel.roles import (
    AttentionSwitch,
    Compilable,
    CUDAGraphable,
    EarlyExit,
    KVCacheSwitch,
    TeacherForcing,
    TokenModel,
    WeightStreaming,
)

from .workload import PRESETS, build


@hookimpl
def genaccel_register_workloads(register):
    register(
        WorkloadSpec(
            name="llama/t-t",
            description="Code Llama code completion: code prompt in, code out (HumanEval lengths)",
            build=build,
            presets=tuple(PRESETS),
            default_preset="small",
            default_decoder="greedy",
            roles=(TokenModel, TeacherForcing, WeightStreaming, EarlyExit, AttentionSwitch, KVCacheSwitch, Compilable,
                   CUDAGraphable),
            capabilities=("hf-generate", "quantize", "beam"),
        )
    )
