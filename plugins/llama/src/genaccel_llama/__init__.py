"""genaccel plugin: Code Llama code completion (workload ``llama/t-t``).

Registration is light: the workload's code (torch, transformers) is imported on first build.
"""

from __future__ import annotations

from genaccel.builtin.registration import ALLOW_MISSING_WEIGHTS
from genaccel.hookspecs import hookimpl
from genaccel.registry import DecoderSpec, Option, WorkloadSpec
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
            capabilities=("hf-generate", "quantize", "beam", "llama-cpp"),
            unit="token",
            options=(ALLOW_MISSING_WEIGHTS,),
        )
    )


@hookimpl
def genaccel_register_decoders(register):
    register(DecoderSpec(
        name="llama-cpp", factory="genaccel_llama.llamacpp:LlamaCpp", requires="llama-cpp",
        description="llama.cpp (greedy) on the run's own weights exported to GGUF: a reference engine",
        options=(Option(name="gguf_type", type=str, default="f32", choices=("f32", "f16", "bf16", "q8_0"),
                        help="the GGUF export llama.cpp runs"),),
    ))
