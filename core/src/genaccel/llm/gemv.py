"""Few-row linears on CPU that read each weight once: genaccel's native GEMV where it runs, else a
fused multiply-reduce under torch.compile; in float32, bf16 or int8."""

from __future__ import annotations

import functools

import torch
from torch import nn

from ..engine.native import cpu_ops


class RowReduceLinear(nn.Linear):
    """``nn.Linear`` whose products with at most ``MAX_ROWS`` rows read each weight once.

    Where genaccel's CPU kernels run (:func:`genaccel.engine.native.cpu_ops`: x86 with AVX2 and FMA),
    such a product is ``genaccel_cpu.gemv`` on the float32 or bf16 weight, or on an int8
    weight-only layer's int8 values (``int8_weight``) and row scales, eager or compiled (an opaque
    call in the compiled graph).  On 2 AVX2 cores (Zen 1) Llama small decoded 1.6x as fast in int8
    with it as with the fused reduction below (47.2 against 29.4 tokens/s, one run of each in turn), whose loops
    convert integer weights through the stack.

    Elsewhere, under torch.compile on CPU, Inductor fuses ``(x[..., None, :] * W).sum(-1)`` into one
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

    With the native kernels, torchao int8 weight-only layers whose input features are a multiple
    of 32 keep ``int8_packed`` (``genaccel_cpu.pack_int8_rows``: four output rows interleaved in
    32-byte chunks, one read stream per thread) and multiply with ``genaccel_cpu.gemv_int8``: each
    input row is quantized to int8 per 32 features (as llama.cpp quantizes q8_0's inputs), each
    block's products are summed exactly in integers (``maddubs``) and scaled in float32.  This is
    lossy beyond the weights' own quantization (the report's agreement covers it); it reads the
    weights at the machine's bandwidth where the float path (sign-extend, convert, FMA: three
    256-bit ops per 8 weights on 128-bit units) was compute-bound at ~60% of it.  Other native
    int8 layers keep ``int8_weight`` (float products of the int8 values).

    Without the native kernels, torchao int8 weight-only weights are read from ``int8_words`` (:func:`pack_int8`), four int8
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
    native: bool = False  # few-row products run genaccel_cpu.gemv (set by cpu_gemv_linears)
    int8_weight: torch.Tensor | None  # (out, in) int8 weight-only values for the native kernel, or None
    int8_packed: torch.Tensor | None  # int8 weight-only values repacked for genaccel_cpu.gemv_int8, or None
    int8_words: torch.Tensor | None  # (out, ceil(in / 4)) int8 weight-only words as float32 bits, or None
    int8_scale: torch.Tensor | None  # (out,) scale of each output row, or None

    def __init__(self, *args, **kwargs):
        """A float layer; :func:`cpu_gemv_linears` switches existing ones (and sets their buffers)."""
        super().__init__(*args, **kwargs)
        for name in ("int8_weight", "int8_packed", "int8_words", "int8_scale"):
            self.register_buffer(name, None, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.numel() // x.shape[-1]
        if rows <= self.MAX_ROWS and self.native and self.int8_packed is not None and x.dtype in NATIVE_DTYPES:
            return torch.ops.genaccel_cpu.gemv_int8(x.contiguous(), self.int8_packed, self.int8_scale, self.bias)
        if rows <= self.MAX_ROWS and self.native and x.dtype in NATIVE_DTYPES and (
                self.int8_weight is not None or self.weight.dtype in NATIVE_DTYPES):  # a later .to(dtype) may leave them
            w = self.weight if self.int8_weight is None else self.int8_weight
            return torch.ops.genaccel_cpu.gemv(x.contiguous(), w, self.int8_scale, self.bias)
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
        768x2048: 81.6 against 11.6 ms on 2 AVX2 cores, the weight's conversion included).  int8
        weight-only layers on CPU: :func:`int8_linear`."""
        int8 = self.int8_words is not None or self.int8_weight is not None or self.int8_packed is not None
        if int8 and x.device.type == "cpu" and not torch.compiler.is_compiling():
            return int8_linear(x, self.weight.qdata, self.int8_scale, self.bias)
        if x.dtype != torch.bfloat16 or int8 or x.device.type != "cpu" or bf16_gemm():
            return nn.functional.linear(x, self.weight, self.bias)
        return float32_linear(x, self.weight, self.bias)


INT8_BLOCK = 256  # output rows of an int8 weight converted to float32 at a time


def int8_linear(x: torch.Tensor, q: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``x @ (q * scale).T + bias`` for many rows of ``x`` (prefill), in float32, rounded once to
    ``x``'s dtype: the int8 weight ``q`` (out, in) converted to float32 ``INT8_BLOCK`` output rows at a
    time into one reused buffer, each block multiplied by the float32 GEMM straight into its columns of
    the output (the block is still in cache), and the row scales applied to the products.  The same
    float products as dequantizing the whole weight first (torchao's path), up to the order of the
    scale's rounding, without writing and reading back a float32 copy of the weight."""
    k, n = q.shape[1], q.shape[0]
    rows = x.reshape(-1, k).float()
    out = torch.empty(rows.shape[0], n)
    block = torch.empty(min(INT8_BLOCK, n), k)
    for r0 in range(0, n, INT8_BLOCK):
        b = block[: min(INT8_BLOCK, n - r0)]
        b.copy_(q[r0 : r0 + len(b)])
        torch.mm(rows, b.t(), out=out[:, r0 : r0 + len(b)])
    out.mul_(scale.float())
    if bias is not None:
        out.add_(bias.float())
    return out.view(*x.shape[:-1], n).to(x.dtype)


def float32_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``F.linear`` in float32 (exact products of bf16 or dequantized weights, float32 accumulation),
    rounded once to ``x``'s dtype."""
    return nn.functional.linear(x.float(), weight.float(), None if bias is None else bias.float()).to(x.dtype)


NATIVE_DTYPES = (torch.float32, torch.bfloat16)  # the float weights and inputs genaccel_cpu.gemv takes


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


def cpu_gemv_linears(root: nn.Module, native: bool | None = None) -> int:
    """Switch the linear layers under ``root`` with float or int8 weight-only weights to
    :class:`RowReduceLinear`; returns how many.  Other weight formats keep their own kernels.
    An int8 layer also keeps its int8 values (for the native kernel) or packed words (for the fused
    reduction) and its row scales as (non-persistent) buffers: the torchao weight stays the
    parameter, for eager calls and the byte counts.  ``native``: whether few-row products take the
    native kernel (None: where it runs; False: the fused reduction)."""
    native = cpu_ops() is not None if native is None else native
    switched = 0
    for module in root.modules():
        if type(module) is not nn.Linear:
            continue
        w = module.weight
        values = packed = words = scale = None
        if _int8_weight_only(w):
            scale = w.scale.reshape(-1)
            if native and w.device.type == "cpu" and w.qdata.shape[-1] % 32 == 0:
                packed, scale = cpu_ops().pack_int8_rows(w.qdata.contiguous()), scale.float().contiguous()
            elif native and w.device.type == "cpu":
                values, scale = w.qdata.contiguous(), scale.float().contiguous()
            else:
                words = pack_int8(w.qdata).view(torch.float32)
        elif type(w) not in (torch.Tensor, nn.Parameter):
            continue
        module.__class__ = RowReduceLinear
        module.native = native and w.device.type == "cpu" and (
            values is not None or packed is not None or w.dtype in NATIVE_DTYPES)
        module.register_buffer("int8_weight", values, persistent=False)
        module.register_buffer("int8_packed", packed, persistent=False)
        module.register_buffer("int8_words", words, persistent=False)
        module.register_buffer("int8_scale", scale, persistent=False)
        switched += 1
    return switched
