"""genaccel plugin: SeamlessM4T v2 translation, speech and text in and out (``seamless/s-s``, ``s-t``,
``t-t``, ``t-s``), with the optimization steps of the study's Table V.

Registration is light: the workload's code (torch, transformers) is imported on first build.
"""

from __future__ import annotations

from genaccel.builtin.registration import ALLOW_MISSING_WEIGHTS
from genaccel.hookspecs import hookimpl
from genaccel.registry import OptimizationSpec, Option, WorkloadSpec
from genaccel.roles import (
    AttentionSwitch,
    Compilable,
    CUDAGraphable,
    KVCacheSwitch,
    MediaCodec,
    PromptInput,
    TokenModel,
    WeightStreaming,
)

PRESETS = ("tiny", "small", "large")  # genaccel_seamless.workload.PRESETS
ROLES = (TokenModel, MediaCodec, PromptInput, WeightStreaming, AttentionSwitch, KVCacheSwitch, Compilable,
         CUDAGraphable)
DESCRIPTIONS = {
    "s-s": "SeamlessM4T v2 speech-to-speech translation: 16 kHz English speech in, Spanish speech (WAV) out",
    "t-t": "SeamlessM4T v2 text-to-text translation: Fleurs-like English text in, Spanish text out (beam 5)",
    "s-t": "SeamlessM4T v2 speech-to-text translation: 16 kHz English speech in, Spanish text out (beam 5)",
    "t-s": "SeamlessM4T v2 text-to-speech translation: English text in, Spanish speech (WAV) out",
}
OPTIONS = (
    Option(name="src_lang", type=str, default="eng", help="source language code"),
    Option(name="tgt_lang", type=str, default="spa", help="target language code"),
    ALLOW_MISSING_WEIGHTS,
)


@hookimpl
def genaccel_register_workloads(register):
    for task, description in DESCRIPTIONS.items():
        extra = ("beam", "quantize", "vocoder", "channels-last") if task.endswith("-s") else ("beam", "quantize")
        register(WorkloadSpec(name=f"seamless/{task}", description=description,
                              build=f"genaccel_seamless.workload:build_{task.replace('-', '_')}", presets=PRESETS,
                              default_preset="small", default_decoder="beam", roles=ROLES, capabilities=extra,
                              unit="token", options=OPTIONS))


_O = "genaccel_seamless.optimizations:"


@hookimpl
def genaccel_register_optimizations(register):
    register(OptimizationSpec(name="compile-kv-reorder", stage="compile", requires="beam", apply=_O + "_compile_reorder",
                              description="torch.compile of the beam search's KV-cache reorder"))
    register(OptimizationSpec(name="bfloat16-vocoder", stage="weights", requires="vocoder", lossless=False,
                              apply=_O + "_bfloat16_vocoder",
                              description="the unit vocoder's generator in bfloat16 (oneDNN AMX/AVX-512 BF16 on CPU); "
                                          "lossy: the waveforms' SNR against float32 is reported"))
    register(OptimizationSpec(name="compile-vocoder", stage="compile", requires="vocoder", apply=_O + "_compile_vocoder",
                              description="torch.compile of the unit vocoder (weight norm removed, fixed lengths; CUDA only: on CPU it loses to eager channels-last convolutions)"))
    register(OptimizationSpec(name="cuda-graph-vocoder", stage="graph", requires="vocoder", devices="cuda",
                              needs="compile-vocoder", apply=_O + "_graph_vocoder",
                              description="the compiled vocoder captured in CUDA graphs"))
