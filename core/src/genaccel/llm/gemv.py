"""A fused multiply-reduce GEMV for few-row linears under torch.compile on CPU."""

from __future__ import annotations

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
    materialize the product).  With torchao int8 weight-only weights (``int8`` set by
    :func:`cpu_gemv_linears`) the int8 values are converted inside the reduction, so a step
    reads a quarter of fp32's bytes.  bf16 and fp16 weights are read as they are and accumulated
    in fp32 (Inductor's CPU reductions).  The input is stored once before the reduction (:func:`stored`): left unstored,
    Inductor recomputed the RMSNorm that produces it inside the loop over output rows (the LM
    head's 32016 rows each redid the final norm).
    """

    MAX_ROWS = 32
    SHARED_ROWS = 8
    int8: tuple[torch.Tensor, torch.Tensor] | None = None  # (int8 weight, per-row scale) of int8 weight-only

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.numel() // x.shape[-1]
        if rows > self.MAX_ROWS or not torch.compiler.is_compiling():
            return nn.functional.linear(x, self.weight, self.bias)
        x = stored(x)
        w = self.weight if self.int8 is None else self.int8[0].to(x.dtype)  # fused: int8 is what is read
        if rows == 1 and self.int8 is None:
            out = (x.unsqueeze(-2) * w).sum(-1)
        else:  # one reduction per row, in loops of at most SHARED_ROWS rows sharing each weight load
            flat = x.reshape(rows, x.shape[-1])
            loops = -(-rows // self.SHARED_ROWS)
            size = -(-rows // loops)
            out = torch.cat([torch.stack([(flat[r] * w).sum(-1) for r in range(s, min(rows, s + size))])
                             for s in range(0, rows, size)]).view(*x.shape[:-1], -1)
        if self.int8 is not None:
            out = out * self.int8[1]
        return out + self.bias if self.bias is not None else out


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
    :class:`RowReduceLinear`; returns how many.  Other weight formats keep their own kernels."""
    switched = 0
    for module in root.modules():
        if type(module) is not nn.Linear:
            continue
        w = module.weight
        if type(w) in (torch.Tensor, nn.Parameter):
            module.__class__ = RowReduceLinear
        elif _int8_weight_only(w):
            module.__class__ = RowReduceLinear
            module.int8 = (w.qdata, w.scale.reshape(-1))
        else:
            continue
        switched += 1
    return switched
