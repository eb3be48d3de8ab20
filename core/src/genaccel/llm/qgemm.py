"""Many-row products (prefill) of int8 and int4 weight-only layers on CPU: oneDNN's u8 x s8 GEMM.

Each row of the input is quantized to uint8 (symmetric, 127 steps each side of 128, its own scale);
the weights are taken to int8 within +-64 with a scale per output row (``genaccel_cpu.int7_from_int4``
and ``int7_from_int8``), packed for oneDNN (``onednn.qlinear_prepack``) and multiplied in integers
(``onednn.qlinear_pointwise``); the rows' and the weights' scales meet in float32.  Without VNNI,
oneDNN's x86 kernels add pairs of u8 * s8 products in 16 bits with saturation (``vpmaddubsw``):
weights within +-64 keep every pair below 2^15, so the integer sums are exact.  On 2 Zen 3 cores the
GEMM of 512 rows by a 8192 x 2048 weight ran at 204-275 GOP/s where float32's ran at 102-131 GFLOP/s,
the conversion and packing of the weight (~0.5 ns a weight) included in neither.

This is lossy beyond the weights' own quantization: the input's rounding (1/254 of each row's
largest value) and, for int8 weights, a seventh bit of the weight (1/128 of each row's largest).
The report's agreement against float32 covers both.  The weight is converted on every call and not
kept: the layer's memory stays its own format's.
"""

from __future__ import annotations

import functools

import torch

from ..engine.native import cpu_ops


@functools.cache
def available() -> bool:
    """Whether genaccel's kernels and oneDNN's quantized linear both run here."""
    return (cpu_ops() is not None and torch.backends.mkldnn.is_available()
            and hasattr(torch.ops.onednn, "qlinear_pointwise"))


def int7_linear(x: torch.Tensor, w7: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``x @ (scale[:, None] * w7).T + bias`` in ``x``'s dtype, ``x`` quantized to uint8 per row;
    ``w7``: (out, in) int8 within +-64, ``scale``: (out,) float32."""
    k = x.shape[-1]
    flat = x.reshape(-1, k).float()
    step = flat.abs().amax(-1, keepdim=True).clamp(min=torch.finfo(torch.float32).tiny) / 127
    xq = (flat / step).round_().add_(128).to(torch.uint8)
    packed = torch.ops.onednn.qlinear_prepack(w7, None)
    zeros = torch.zeros(scale.shape, dtype=torch.int64)
    y = torch.ops.onednn.qlinear_pointwise(xq, 1.0, 128, packed, scale, zeros, None, 1.0, 0, torch.float32,
                                           "none", [], "")
    y = y * step
    if bias is not None:
        y = y + bias.float()
    return y.to(x.dtype).reshape(*x.shape[:-1], -1)
