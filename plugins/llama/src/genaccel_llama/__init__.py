"""genaccel plugin: Code Llama code completion (workload ``llama/t-t``).

Registration is light: the workload's code (torch, transformers) is imported on first build.
"""

from __future__ import annotations

from genaccel.api import (
    ALLOW_MISSING_WEIGHTS,
    AttentionRecord,
    AttentionSwitch,
    BeamSearch,
    Compilable,
    CUDAGraphable,
    DecoderSpec,
    EarlyExit,
    KVCacheSwitch,
    Member,
    Option,
    Quantizable,
    Role,
    TeacherForcing,
    TokenModel,
    TransformersReference,
    WeightStreaming,
    WorkloadSpec,
    hookimpl,
)

from .presets import PRESETS


class LlamaCppReference(Role):
    """llama.cpp on the run's own weights, exported to GGUF (the ``llama-cpp`` reference decoder)."""

    capability = "llama-cpp"
    tokenizer = Member()

    def kv_bytes_per_token(self): ...


@hookimpl
def genaccel_register_workloads(register):
    register(
        WorkloadSpec(
            name="llama/t-t",
            description="Code Llama code completion: code prompt in, code out (HumanEval lengths)",
            build="genaccel_llama.workload:build",
            presets=tuple(PRESETS),
            default_preset="small",
            default_decoder="greedy",
            roles=(TokenModel, TeacherForcing, WeightStreaming, EarlyExit, BeamSearch, TransformersReference, Quantizable,
                   LlamaCppReference, AttentionSwitch, KVCacheSwitch, Compilable, CUDAGraphable, AttentionRecord),
            unit="token",
            options=(ALLOW_MISSING_WEIGHTS,),
        )
    )


@hookimpl
def genaccel_register_decoders(register):
    register(DecoderSpec(
        name="llama-cpp", factory="genaccel_llama.llamacpp:LlamaCpp", requires=(TokenModel, LlamaCppReference),
        description="llama.cpp (greedy) on the run's own weights exported to GGUF: a reference engine",
        options=(Option(name="gguf_type", type=str, default="f32", choices=("f32", "f16", "bf16", "q8_0"),
                        help="the GGUF export llama.cpp runs"),),
    ))
