"""genaccel plugin: SeamlessM4T v2 translation, speech and text in and out (``seamless/s-s``, ``s-t``,
``t-t``, ``t-s``), with the optimization steps of the study's Table V."""

from __future__ import annotations

from genaccel import WorkloadSpec, hookimpl
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

from .optimizations import genaccel_register_optimizations  # noqa: F401 - a hook of this plugin
from .workload import PRESETS, build_for

DESCRIPTIONS = {
    "s-s": "SeamlessM4T v2 speech-to-speech translation: 16 kHz English speech in, Spanish speech (WAV) out",
    "t-t": "SeamlessM4T v2 text-to-text translation: Fleurs-like English text in, Spanish text out (beam 5)",
    "s-t": "SeamlessM4T v2 speech-to-text translation: 16 kHz English speech in, Spanish text out (beam 5)",
    "t-s": "SeamlessM4T v2 text-to-speech translation: English text in, Spanish speech (WAV) out",
}
OPTIONS = {"src_lang": "source language code (default eng)", "tgt_lang": "target language code (default spa)"}


@hookimpl
def genaccel_register_workloads(register):
    for task, description in DESCRIPTIONS.items():
        register(WorkloadSpec(name=f"seamless/{task}", description=description, build=build_for(task),
                              presets=tuple(PRESETS), default_preset="small", default_decoder="beam",
                              roles=(TokenModel, MediaCodec, PromptInput, WeightStreaming, AttentionSwitch,
                                     KVCacheSwitch, Compilable, CUDAGraphable),
                              capabilities=("beam", "quantize", *(("vocoder",) if task.endswith("-s") else ())),
                              options=OPTIONS))
