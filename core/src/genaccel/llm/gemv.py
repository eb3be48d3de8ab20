"""A fused multiply-reduce GEMV for few-row linears under torch.compile on CPU, in float or int8."""

from __future__ import annotations

import functools

import torch
from torch import nn


class RowReduceLinear(nn.Linear):
    """``nn.Linear`` whose products with at most ``MAX_ROWS`` rows are multiply-reduces when compiled.

    Under torch.compile on CPU, Inductor fuses ``(x[..., None, :] * W).sum(-1)`` into one
    vectorized reduction that streams the weight once: a bandwidth-bound GEMV.  On a 2-core
    x86 machine it read weights at ~28 GB/s where ATen's GEMV (MKL) read ~9-12 GB/s.  Several
    rows are written as one reduction per row, which Inductor fuses into a single loop sharing
    each weight load: up to ``SHARED_ROWS`` rows in one loop (5 rows, a beam search's step,
    cost ~1.5x one row where MKL's GEMM took ~4x and a broadcast reduction ~4x), more rows in
    even chunks of at most ``SHARED_ROWS`` (20 rows: ~0.6x MKL's time on the LM head).  Larger
    inputs (prefill) keep ``F.linear``, and so does every eager call (the reduction would
    materialize the product).  bf16 and fp16 weights are read as they are and accumulated in
    fp32 (Inductor's CPU reductions).  The input is stored once before the reduction
    (:func:`stored`): left unstored, Inductor recomputed the RMSNorm that produces it inside the
    loop over output rows (the LM head's 32016 rows each redid the final norm).

    torchao int8 weight-only weights are read from ``int8_words`` (:func:`pack_int8`), four int8
    weights to a 32-bit word, and scaled by ``int8_scale`` per output row after the reduction.
    Inductor's CPU loops load integer vectors through ATen's ``Vectorized<int>::loadu(ptr, count)``,
    which copies through the stack even for a whole vector (float loads of a whole vector are one
    instruction): read as int8, eight bytes at a time, the GEMV ran 3.5-5x slower than fp32's while
    reading a quarter of its bytes; read as int32 words, 1.5x slower.  So the words are kept as
    float32 bit patterns (a float load), reinterpreted as int32 inside the loop and each byte
    sign-extended by shifts (:func:`int8_quarters`): 2-3x faster than fp32's GEMV.  A float cast of
    the module (``.to(dtype)``) would destroy the words: they are built after the model's dtype is
    set, when the step is compiled.
    """

    MAX_ROWS = 32
    SHARED_ROWS = 8
    int8_words: torch.Tensor | None  # (out, ceil(in / 4)) int8 weight-only words as float32 bits, or None
    int8_scale: torch.Tensor | None  # (out,) scale of each output row, or None

    def __init__(self, *args, **kwargs):
        """A float layer; :func:`cpu_gemv_linears` switches existing ones (and sets their buffers)."""
        super().__init__(*args, **kwargs)
        self.register_buffer("int8_words", None, persistent=False)
        self.register_buffer("int8_scale", None, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.numel() // x.shape[-1]
        if rows > self.MAX_ROWS or not torch.compiler.is_compiling():
            return self._linear(x)
        flat = stored(x).reshape(rows, x.shape[-1])
        if self.int8_words is None:
            w = self.weight

            def dot(row):
                return (row * w).sum(-1)
        else:
            quarters = int8_quarters(self.int8_words.view(torch.int32), x.dtype)

            def dot(row):
                return int8_dot(row, quarters)
        if rows == 1:
            out = dot(flat[0]).view(*x.shape[:-1], -1)
        else:  # one reduction per row, in loops of at most SHARED_ROWS rows sharing each weight load
            loops = -(-rows // self.SHARED_ROWS)
            size = -(-rows // loops)
            out = torch.cat([torch.stack([dot(flat[r]) for r in range(s, min(rows, s + size))])
                             for s in range(0, rows, size)]).view(*x.shape[:-1], -1)
        if self.int8_scale is not None:
            out = out * self.int8_scale
        return out + self.bias if self.bias is not None else out


    def _linear(self, x: torch.Tensor) -> torch.Tensor:
        """``F.linear``; with bf16 float weights on a CPU without a bf16 GEMM (no AVX-512 BF16 or
        AMX), in fp32: the same exact products and fp32 accumulation, rounded once to bf16, where
        oneDNN's emulated bf16 GEMM ran 7x slower than fp32's (a 512-token prefill's 512x768 by
        768x2048: 81.6 against 11.6 ms on 2 AVX2 cores, the weight's conversion included)."""
        if x.dtype != torch.bfloat16 or self.int8_words is not None or x.device.type != "cpu" or bf16_gemm():
            return nn.functional.linear(x, self.weight, self.bias)
        bias = None if self.bias is None else self.bias.float()
        return nn.functional.linear(x.float(), self.weight.float(), bias).to(x.dtype)


@functools.cache
def bf16_gemm() -> bool:
    """Whether this CPU multiplies bf16 matrices natively (oneDNN's check: AVX-512 BF16 or AMX)."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def pack_int8(q: torch.Tensor) -> torch.Tensor:
    """int8 weights (out, in) as int32 words (out, ceil(in / 4)): byte ``k`` (little-endian) of
    word ``j`` holds input feature ``j + k * words``, so each byte lane meets a contiguous quarter
    of the input.  ``in`` is zero-padded to a multiple of 4."""
    out, inp = q.shape
    words = -(-inp // 4)
    padded = nn.functional.pad(q, (0, 4 * words - inp))
    return padded.view(out, 4, words).transpose(1, 2).contiguous().view(torch.int32).view(out, words)


def int8_quarters(words: torch.Tensor, dtype: torch.dtype) -> list[torch.Tensor]:
    """The four sign-extended byte lanes of :func:`pack_int8`'s words, in ``dtype`` (fused into the
    reduction by Inductor: never stored)."""
    lanes = [(words << (24 - 8 * k)) >> 24 for k in range(3)] + [words >> 24]
    return [lane.to(dtype) for lane in lanes]


def int8_dot(row: torch.Tensor, quarters: list[torch.Tensor]) -> torch.Tensor:
    """One input row times the packed weight: (out,), before the row scales."""
    words = quarters[0].shape[-1]
    if row.shape[-1] != 4 * words:
        row = nn.functional.pad(row, (0, 4 * words - row.shape[-1]))
    parts = row.view(4, words)
    return (parts[0] * quarters[0] + parts[1] * quarters[1] + parts[2] * quarters[2] + parts[3] * quarters[3]).sum(-1)


def stored(x: torch.Tensor) -> torch.Tensor:
    """``x`` unchanged; under Inductor, computed once into memory (``as_strided`` needs a stored
    input) instead of being recomputed inside every consumer's loop."""
    x = x.contiguous()
    return x.as_strided(x.shape, x.stride())


def _int8_weight_only(w) -> bool:
    """A torchao int8 weight-only tensor with one scale per output row."""
    return (
        type(w).__name__ == "Int8Tensor" and getattr(w, "act_quant_kwargs", True) is None
        and getattr(w, "act_pre_scale", None) is None and list(w.block_size)[-1] == w.qdata.shape[-1]
    )


def cpu_gemv_linears(root: nn.Module) -> int:
    """Switch the linear layers under ``root`` with float or int8 weight-only weights to
    :class:`RowReduceLinear`; returns how many.  Other weight formats keep their own kernels.
    An int8 layer also keeps its packed words and row scales as (non-persistent) buffers: the
    torchao weight stays the parameter, for eager calls and the byte counts."""
    switched = 0
    for module in root.modules():
        if type(module) is not nn.Linear:
            continue
        w = module.weight
        if type(w) in (torch.Tensor, nn.Parameter):
            words = scale = None
        elif _int8_weight_only(w):
            words, scale = pack_int8(w.qdata).view(torch.float32), w.scale.reshape(-1)
        else:
            continue
        module.__class__ = RowReduceLinear
        module.register_buffer("int8_words", words, persistent=False)
        module.register_buffer("int8_scale", scale, persistent=False)
        switched += 1
    return switched
