"""genaccel plugin: Code Llama code completion (workload ``llama/t-t``).

Registration is light: the workload's code (torch, transformers) is imported on first build.
"""

from __future__ import annotations

from genaccel.builtin.registration import ALLOW_MISSING_WEIGHTS
from genaccel.hookspecs import hookimpl
from genaccel.registry import WorkloadSpec
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

PRESETS = ("tiny", "small", "7b", "34b", "70b")  # genaccel_llama.workload.PRESETS


@hookimpl
def genaccel_register_workloads(register):
    register(
        WorkloadSpec(
            name="llama/t-t",
            description="Code Llama code completion: code prompt in, code out (HumanEval lengths)",
            build="genaccel_llama.workload:build",
            presets=PRESETS,
            default_preset="small",
            default_decoder="greedy",
            roles=(TokenModel, TeacherForcing, WeightStreaming, EarlyExit, AttentionSwitch, KVCacheSwitch, Compilable,
                   CUDAGraphable),
            capabilities=("hf-generate", "quantize", "beam"),
            unit="token",
            options=(ALLOW_MISSING_WEIGHTS,),
        )
    )
