"""Seamless's own optimization steps (the study's Table V): compile of the KV reorder, and the
vocoder compiled (weight norm removed, input padded to fixed lengths) and captured in CUDA graphs
(CUDA only: on CPU the vocoder's fast path is the generic ``channels-last`` step), and the vocoder in
bfloat16 (lossy).

Registered by the plugin's ``__init__`` by import strings (``genaccel_seamless.optimizations:_compile_reorder``)."""

from __future__ import annotations

from genaccel.api import NotApplied, device_type
from torch import nn

VOCODER_BUCKET = 512  # generator input frames are padded to a multiple of this (50 a second: ~10 s)


def _compile_reorder(ctx) -> str:
    ctx.instance.model.compile_reorder()
    static = ctx.instance.model.cache_kind == "static"
    return "KV-cache reorder compiled" + (" (static shapes, in place)" if static else " (dynamic shapes)")


def _remove_weight_norm(module: nn.Module) -> int:
    removed = 0
    for sub in module.modules():
        if nn.utils.parametrize.is_parametrized(sub, "weight"):
            nn.utils.parametrize.remove_parametrizations(sub, "weight")
            removed += 1
        elif hasattr(sub, "weight_g"):
            nn.utils.remove_weight_norm(sub)
            removed += 1
    return removed


def _bfloat16_vocoder(ctx) -> str:
    import torch

    if ctx.config.dtype != "float32":
        raise NotApplied(f"the run is already in {ctx.config.dtype}")
    if device_type(ctx.device) != "cuda" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        raise NotApplied("this CPU has no bfloat16 instructions for oneDNN (AVX-512 BF16 or AMX)")
    n = ctx.instance.vocoder.set_dtype(torch.bfloat16)
    return f"vocoder generator in bfloat16 ({n / 1e6:.1f}M parameters); the waveform's SNR against float32 is reported"


def _compile_vocoder(ctx) -> str:
    voc = ctx.instance.vocoder
    removed = _remove_weight_norm(voc.generator)
    voc.set_compile(VOCODER_BUCKET)
    return (f"vocoder generator compiled, input padded to multiples of {VOCODER_BUCKET} frames and trimmed after"
            + (f"; weight norm removed from {removed} layers" if removed else ""))


def _graph_vocoder(ctx) -> str:
    ctx.instance.vocoder.set_compile(VOCODER_BUCKET, cuda_graph=True)
    return "vocoder generator replayed from CUDA graphs (one per padded length)"
