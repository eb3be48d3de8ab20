"""int4 weight-only linears on CPU: group-wise uint4 weights over genaccel's CPU kernel.

A weight is ``(q - 8) * scale + zero`` with ``q`` in 0..15 and a bf16 scale and zero point per
group of ``group_size`` input features (the asymmetric min/max scheme of torchao's int4 configs:
``scale = (max - min) / 15``, ``zero = min + 8 * scale``, each ``q`` rounded from the stored,
bf16-rounded scale and zero point).  :func:`pack_uint4` stores 64 features in 32 bytes (byte ``j``
of a chunk: feature ``j`` in its low nibble, ``32 + j`` in its high one, so that one load and two
masks give two blocks of 32 in order), the rows padded to a multiple of 4 and each 4 interleaved
chunk by chunk, so that the four rows the kernel reads together are one stream of memory (as
``pack_int8_rows`` does for int8), beside a (out, groups, 2) bf16 tensor of scales and zero points:
0.5 bytes a weight plus 4 bytes a group.  On 2 Zen 3 cores the 1B-class preset's decode weights in
model order took 0.58-0.59x the time of the int8 kernel on the same shapes (timed in the same process)
where four separate row streams took 0.70-0.72x: about 0.82x the time.

:class:`Int4Linear` multiplies few-row inputs (decode steps) with ``genaccel_cpu.gemv_int4``, which
quantizes each input row to int8 per group and sums the products exactly in integers (its kernel's
comment).  Many-row inputs (prefill, which runs eager) take oneDNN's u8 x s8 GEMM where it runs
(:func:`int7_linear`): each input row quantized to uint8 with its own scale (per token, as torchao's
and ExecuTorch's int8-dynamic-activation int4-weight schemes do), the weight converted on every call
(not kept) to int8 within +-64 with a scale per output row (``genaccel_cpu.int7_from_int4``).
Compiled, or without oneDNN's quantized linear, they dequantize the weight to float32
(``dequantize_int4``) and take the float32 GEMM.
Without VNNI, oneDNN's x86 kernels add pairs of u8 * s8 products in 16 bits with saturation
(``vpmaddubsw``); weights within +-64 keep every pair below 2^15, so the integer sums are exact.  On
2 Zen 3 cores a 512-row GEMM by an 8192 x 2048 weight ran at 204-275 GOP/s where float32's ran at
102-131 GFLOP/s, and a 1B-class prefill at 95-98 tokens/s where dequantizing to float32 ran at 46-51.  The
input's rounding (1/254 of its row's largest value) and the weight's (1/128 of its row's largest)
add an error about a fifth the size of int4's own on random weights (``tests/test_native.py``) and
about three quarters of it where a few input features are 20x the others (outlier features); the
report's accuracy impact measures it.  With VNNI the pairs do not saturate and weights of +-127 would
halve the weight's part; this module keeps +-64 everywhere.  For int8 weight-only layers the same path would add about
seven times int8's own error there, so their prefill keeps float products (``genaccel.llm.gemv.int8_linear``).  Where the native kernels are unavailable
(:func:`genaccel.engine.native.cpu_ops`) both go through :func:`dequantize_uint4` and ``F.linear``:
float products of the same weights, slower.

torchao's CPU int4 (``Int4OpaqueTensor`` over ATen's ``_weight_int4pack_mm_for_cpu``) was this
module's kernel before: it is vectorized for bf16 activations only and read weights at 13% of the
bandwidth in the decode step on a 2-core AVX2 machine.

A layer whose ``in_features`` is not a multiple of the group size and of 64 cannot be packed: it stays in
its precision and the note records it with the reason.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from ..engine.native import cpu_ops
from ..llm.gemv import NATIVE_DTYPES, RowReduceLinear, float32_linear


def quantize_uint4(w: torch.Tensor, group_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``w`` (out, in) as group-wise ``q`` (out, in) uint8 in 0..15 and bf16 (out, groups, 2) scales and zero points."""
    out, inp = w.shape
    groups = w.detach().float().reshape(out, inp // group_size, group_size)
    lo, hi = groups.amin(-1), groups.amax(-1)
    scale = ((hi - lo) / 15).clamp(min=torch.finfo(torch.bfloat16).tiny).to(torch.bfloat16)
    zero = (lo + 8 * scale.float()).to(torch.bfloat16)
    s, z = scale.float()[..., None], zero.float()[..., None]
    q = ((groups - z) / s + 8).round().clamp(0, 15).to(torch.uint8).reshape(out, inp)
    return q, torch.stack([scale, zero], -1).contiguous()


def pack_uint4(q: torch.Tensor) -> torch.Tensor:
    """``q`` (out, in) in 0..15 as (out rounded up to 4, in / 2) bytes, 32 bytes per 64 features of a
    row and four rows interleaved chunk by chunk (module docstring); padding rows are zero."""
    out, inp = q.shape
    rows = -(-out // 4) * 4
    blocks = nn.functional.pad(q, (0, 0, 0, rows - out)).reshape(rows, inp // 64, 2, 32)
    chunks = blocks[:, :, 0] | (blocks[:, :, 1] << 4)  # (rows, in / 64, 32)
    return chunks.reshape(rows // 4, 4, inp // 64, 32).transpose(1, 2).reshape(rows, inp // 2).contiguous()


def unpack_uint4(packed: torch.Tensor, out: int) -> torch.Tensor:
    """:func:`pack_uint4`'s ``q`` (out, in) back from its bytes."""
    rows, half = packed.shape
    chunks = packed.reshape(rows // 4, half // 32, 4, 32).transpose(1, 2).reshape(rows, half // 32, 32)[:out]
    return torch.stack([chunks & 0x0F, chunks >> 4], 2).reshape(out, 2 * half)


def dequantize_uint4(packed: torch.Tensor, scale_zero: torch.Tensor, group_size: int) -> torch.Tensor:
    """The float32 weights (out, in) that ``packed`` and ``scale_zero`` stand for (portable)."""
    out = scale_zero.shape[0]
    q = unpack_uint4(packed, out).reshape(out, -1, group_size).float()
    s, z = scale_zero.float().unbind(-1)
    return ((q - 8) * s[..., None] + z[..., None]).reshape(out, -1)


@functools.cache
def integer_gemm() -> bool:
    """Whether genaccel's kernels and oneDNN's quantized linear both run here (the prefill's GEMM)."""
    return (cpu_ops() is not None and torch.backends.mkldnn.is_available()  # oneDNN's ops are registered with it
            and all(torch._C._dispatch_has_kernel_for_dispatch_key(f"onednn::{op}", "CPU")
                    for op in ("qlinear_prepack", "qlinear_pointwise")))


def int7_linear(x: torch.Tensor, w7: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``x @ (scale[:, None] * w7).T + bias`` in ``x``'s dtype with oneDNN's u8 x s8 GEMM, ``x``
    quantized to uint8 per row (127 steps each side of 128); ``w7``: (out, in) int8 within +-64,
    ``scale``: (out,) float32."""
    k = x.shape[-1]
    flat = x.reshape(-1, k).float()
    step = (flat.abs().amax(-1, keepdim=True) / 127).clamp(min=torch.finfo(torch.float32).tiny)
    xq = (flat / step).round_().add_(128).to(torch.uint8)
    packed = torch.ops.onednn.qlinear_prepack(w7, None)
    zeros = torch.zeros(scale.shape, dtype=torch.int64)
    y = torch.ops.onednn.qlinear_pointwise(xq, 1.0, 128, packed, scale, zeros, None, 1.0, 0, torch.float32,
                                           "none", [], "")
    y = y * step
    if bias is not None:
        y = y + bias.float()
    return y.to(x.dtype).reshape(*x.shape[:-1], -1)


class Int4Linear(nn.Linear):
    """``nn.Linear`` whose ``weight`` parameter is the packed uint4 bytes (out, in / 2) and whose
    ``scale_zero`` parameter holds the groups' scales and zero points: the parameters are what the
    byte counts read.  Few-row products run the native int4 GEMV; the bias is added in the kernel."""

    scale_zero: nn.Parameter
    group_size: int
    native: bool  # the genaccel_cpu ops run here (decided when quantized)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        few = x.numel() // x.shape[-1] <= RowReduceLinear.MAX_ROWS
        if self.native and x.dtype in NATIVE_DTYPES and few:
            return torch.ops.genaccel_cpu.gemv_int4(x.contiguous(), self.weight, self.scale_zero, self.group_size, self.bias)
        if self.native and not few and not torch.compiler.is_compiling() and integer_gemm():
            w7, scale = torch.ops.genaccel_cpu.int7_from_int4(self.weight, self.scale_zero, self.group_size)
            return int7_linear(x, w7, scale, self.bias)
        dequantize = torch.ops.genaccel_cpu.dequantize_int4 if self.native else dequantize_uint4
        return float32_linear(x, dequantize(self.weight, self.scale_zero, self.group_size), self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, int4 groups of {self.group_size}"


def unsupported(layer: nn.Linear, group_size: int) -> str | None:
    """Why ``layer`` cannot take int4 groups of ``group_size`` (None: it can)."""
    if layer.in_features % group_size:
        return f"in_features {layer.in_features} is not a multiple of the group size {group_size}"
    if layer.in_features % 64:
        return f"in_features {layer.in_features} is not a multiple of 64 (the packing's chunk)"
    return None


def quantize_int4_cpu(module: nn.Module, layers: dict[str, nn.Linear], group_size: int) -> dict[str, str]:
    """Quantize ``layers`` (by qualified name, under ``module``) to int4 in place; returns the
    layers left in their precision with the reason, by name."""
    left = {name: why for name, layer in layers.items() if (why := unsupported(layer, group_size))}
    native = cpu_ops() is not None
    for name, layer in layers.items():
        if name in left:
            continue
        q, scale_zero = quantize_uint4(layer.weight, group_size)
        layer.__class__ = Int4Linear
        layer.weight = nn.Parameter(pack_uint4(q), requires_grad=False)
        layer.scale_zero = nn.Parameter(scale_zero, requires_grad=False)
        layer.group_size = group_size
        layer.native = native and layer.weight.device.type == "cpu"
    return left
