"""genaccel plugin: SeamlessM4T v2 translation, speech and text in and out (``seamless/s-s``, ``s-t``,
``t-t``, ``t-s``), with the optimization steps of the study's Table V.

Registration is light: the workload's code (torch, transformers) is imported on first build.
"""

from __future__ import annotations

from genaccel.api import (
    ALLOW_MISSING_WEIGHTS,
    MEDIA_TOKEN_ROLES,
    AttentionRecord,
    BeamSearch,
    ChannelsLast,
    Member,
    OptimizationSpec,
    Option,
    ReorderableSteps,
    Role,
    WorkloadSpec,
    hookimpl,
)

from .presets import PRESETS


class _CompilableReorder(ReorderableSteps):
    def compile_reorder(self): ...


class CompiledReorder(Role):
    """Beam search whose cache reorder can be compiled (Seamless's decoder steps)."""

    capability = "compile-kv-reorder"
    model = Member(plays=_CompilableReorder)


class _VocoderSteps(Role):
    generator = Member()

    def set_dtype(self, dtype): ...
    def set_compile(self, bucket, *, cuda_graph=False): ...


class Vocoder(Role):
    """Speech out: the unit vocoder, whose generator the vocoder steps compile, graph or cast."""

    capability = "vocoder"
    vocoder = Member(plays=_VocoderSteps)


ROLES = (*MEDIA_TOKEN_ROLES, BeamSearch, CompiledReorder, AttentionRecord)
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
        speech = (Vocoder, ChannelsLast) if task.endswith("-s") else ()
        register(WorkloadSpec(name=f"seamless/{task}", description=description,
                              build=f"genaccel_seamless.workload:build_{task.replace('-', '_')}", presets=tuple(PRESETS),
                              default_preset="small", default_decoder="beam", roles=ROLES + speech, unit="token",
                              options=OPTIONS))


_O = "genaccel_seamless.optimizations:"


@hookimpl
def genaccel_register_optimizations(register):
    register(OptimizationSpec(name="compile-kv-reorder", stage="compile", requires=CompiledReorder, apply=_O + "_compile_reorder",
                              description="torch.compile of the beam search's KV-cache reorder"))
    register(OptimizationSpec(name="bfloat16-vocoder", stage="weights", requires=Vocoder, lossless=False,
                              apply=_O + "_bfloat16_vocoder",
                              description="the unit vocoder's generator in bfloat16 (oneDNN AMX/AVX-512 BF16 on CPU); "
                                          "lossy: the waveforms' SNR against float32 is reported"))
    # CUDA only: on a 2-core x86 CPU the compiled generator took 1.3-1.6x the time of eager channels-last
    # convolutions (oneDNN) on the same input, and each new padded length compiles anew.  A device skip
    # is known when the stack resolves, so a bench runs a stack that differs from its neighbour only by
    # this step once.
    register(OptimizationSpec(name="compile-vocoder", stage="compile", requires=Vocoder, devices="cuda",
                              apply=_O + "_compile_vocoder",
                              description="torch.compile of the unit vocoder (weight norm removed, fixed lengths; "
                                          "CUDA only: on CPU it loses to eager channels-last convolutions)"))
    register(OptimizationSpec(name="cuda-graph-vocoder", stage="graph", requires=Vocoder, devices="cuda",
                              needs="compile-vocoder", apply=_O + "_graph_vocoder",
                              description="the compiled vocoder captured in CUDA graphs"))
