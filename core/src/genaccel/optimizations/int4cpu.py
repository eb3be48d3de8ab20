"""int4 weight-only linears on CPU: group-wise uint4 weights over ATen's CPU int4 kernel.

torchao's ``Int4WeightOnlyConfig`` packs for CUDA's tinygemm only; its CPU counterpart is the
prototype ``Int4OpaqueTensor`` (asymmetric uint4 per group of ``group_size`` input features, a
scale and a zero point per group, packed by ``aten._convert_weight_to_int4pack_for_cpu`` and
multiplied by ``aten._weight_int4pack_mm_for_cpu``).  That kernel is vectorized for bf16 (and
fp16) activations only: on a 2-core AVX2 machine a 2048x768 one-row product took ~1.8 ms with
fp32 activations against ~0.22-0.28 ms in bf16 (fp32 dense: ~0.3-0.5 ms).  So the weight is
quantized from its bf16 rounding (scales and zero points in bf16) and :class:`Int4Linear` runs
the product in bf16 whatever the model's dtype, converting the result back: a float32 model
pays bf16 rounding of each linear's input on top of the int4 weights (both are in the measured
accuracy impact).  The kernel is an opaque call under torch.compile (:func:`int4_linear_cpu`).

A layer whose ``in_features`` is not a multiple of the group size cannot be packed: it stays in
its precision and the note records it with the reason.
"""

from __future__ import annotations

import torch
from torch import nn
from torchao.prototype.quantization.int4 import PrototypeInt4WeightOnlyConfig
from torchao.quantization import quantize_


@torch.library.custom_op("genaccel::int4_linear_cpu", mutates_args=())
def int4_linear_cpu(x: torch.Tensor, packed: torch.Tensor, scale_zero: torch.Tensor, group_size: int) -> torch.Tensor:
    """``x @ W.T`` for the int4 ``W`` packed by torchao's CPU layout, computed in bf16, in ``x``'s dtype.

    One opaque op for Inductor: the bf16 conversions stay inside it, so none is fused as an
    epilogue into the kernel that produced ``x`` (Inductor's CPU flex-attention template refuses
    epilogues, and attention's output is what ``o_proj`` takes)."""
    rows = x.reshape(-1, x.shape[-1]).to(torch.bfloat16).contiguous()
    y = torch.ops.aten._weight_int4pack_mm_for_cpu(rows, packed, group_size, scale_zero)
    return y.to(x.dtype).reshape(*x.shape[:-1], y.shape[-1])


@int4_linear_cpu.register_fake
def _(x, packed, scale_zero, group_size):
    return x.new_empty(*x.shape[:-1], scale_zero.shape[1])


class Int4Linear(nn.Linear):
    """``nn.Linear`` whose weight is torchao's ``Int4OpaqueTensor`` (kept as the parameter: what
    the byte counts and the report read); the product goes through :func:`int4_linear_cpu` on the
    packed data and the bf16 scales and zero points (``packed``, ``scale_zero``: the same storage),
    the bias (in the model's dtype) added after."""

    packed: torch.Tensor
    scale_zero: torch.Tensor
    group_size: int

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = int4_linear_cpu(x, self.packed, self.scale_zero, self.group_size)
        return y + self.bias if self.bias is not None else y


def unsupported(layer: nn.Linear, group_size: int) -> str | None:
    """Why ``layer`` cannot take int4 groups of ``group_size`` (None: it can)."""
    if layer.in_features % group_size:
        return f"in_features {layer.in_features} is not a multiple of the group size {group_size}"
    return None


def quantize_int4_cpu(module: nn.Module, layers: dict[str, nn.Linear], group_size: int) -> dict[str, str]:
    """Quantize ``layers`` (by qualified name, under ``module``) to int4 in place; returns the
    layers left in their precision with the reason, by name."""
    left = {name: why for name, layer in layers.items() if (why := unsupported(layer, group_size))}
    chosen = {name for name in layers if name not in left}
    for name in chosen:
        layer = layers[name]
        layer.weight = nn.Parameter(layer.weight.detach().to(torch.bfloat16), requires_grad=False)
    quantize_(module, PrototypeInt4WeightOnlyConfig(group_size=group_size, set_inductor_config=False),
              filter_fn=lambda m, fqn: fqn in chosen)
    for name in chosen:
        layer = layers[name]
        layer.__class__ = Int4Linear
        layer.register_buffer("packed", layer.weight.qdata, persistent=False)
        layer.register_buffer("scale_zero", layer.weight.scale_and_zero, persistent=False)
        layer.group_size = group_size
    return left

