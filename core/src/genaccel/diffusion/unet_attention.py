"""The attention processor of genaccel's UNets under SDPA (:class:`UNetAttention`), for the plain case:
hidden states (B, L, C), no mask, no group or spatial norm (others go through ``diffusers``' processor).

- **Heads of 8 on the CPU** attend through genaccel's kernel (``genaccel_cpu.narrow_attention``, where
  :func:`~genaccel.engine.native.cpu_ops` runs): torch's CPU flash attention multiplies blocks through
  GEMMs whose inner dimension is the head's 8, at a fraction of the machine's peak.  Other heads, devices
  and dtypes attend through ``torch.nn.functional.scaled_dot_product_attention``.
- **A text-to-video UNet's cross-attention** projects each video's text once.  diffusers'
  ``UNet3DConditionModel`` runs its spatial layers on the frames as batch rows and repeats each video's
  text for every frame (``repeat_interleave``), so diffusers' processors project the same text tokens to
  keys and values once per frame.  Here the video's frames' queries attend to one projection as one
  sequence: each query's softmax runs over the same keys either way, so it is the same attention, and the
  projection's work falls by the frame count (Make-A-Video small, 8 frames under classifier-free guidance:
  about 5.5 of 6.3 GFLOP a step).
"""

from __future__ import annotations

import torch
from diffusers.models.attention_processor import Attention
from torch import nn
from torch.nn import functional as F

from ..engine.native import cpu_ops

NARROW_HEAD = 8  # the head width genaccel_cpu.narrow_attention takes


def narrow_heads(module: nn.Module) -> bool:
    """Whether any ``diffusers`` attention in ``module`` has heads of :data:`NARROW_HEAD`."""
    return any(isinstance(m, Attention) and m.inner_dim == NARROW_HEAD * m.heads for m in module.modules())


def attend(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float, *, native: bool) -> torch.Tensor:
    """softmax(q kᵀ·scale) v over (B, H, L, D) queries, keys and values; ``native``: heads of 8 in float32 on
    the CPU, outside autograd, through genaccel's kernel (its output (B, Lq, H, D) in memory)."""
    if (native and query.shape[-1] == NARROW_HEAD and query.device.type == "cpu"
            and all(t.dtype == torch.float32 and not t.requires_grad for t in (query, key, value))):
        return torch.ops.genaccel_cpu.narrow_attention(query, key, value, scale)
    return F.scaled_dot_product_attention(query, key, value, dropout_p=0.0, is_causal=False, scale=scale)


class UNetAttention:
    """A ``diffusers`` attention processor: ``base`` (SDPA's ``AttnProcessor2_0`` or ``FusedAttnProcessor2_0``,
    as ``fused`` says) for what it does not take; cross-attention whose context repeats for every ``frames``
    consecutive rows projects it once per ``frames`` rows; ``native``: heads of 8 through genaccel's CPU kernel
    (:func:`attend`)."""

    def __init__(self, base, *, frames: int = 1, fused: bool, native: bool):
        if frames < 1:
            raise ValueError(f"frames {frames}: expected at least 1")
        if native and cpu_ops() is None:
            raise ValueError("native attention needs genaccel's CPU kernels (genaccel.engine.native.cpu_ops)")
        self.base, self.frames, self.fused, self.native = base, frames, fused, native

    def __call__(self, attn, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None, *args, **kwargs):
        rows = hidden_states.shape[0]
        cross = encoder_hidden_states is not None
        if (attention_mask is not None or hidden_states.ndim != 3 or attn.spatial_norm is not None
                or attn.group_norm is not None
                or (cross and (rows % self.frames or encoder_hidden_states.shape[0] != rows))):
            return self.base(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)
        if cross:
            text = encoder_hidden_states[:: self.frames]  # one row per video (the rows of a video are equal)
            if attn.norm_cross:
                text = attn.norm_encoder_hidden_states(text)
            query = attn.to_q(hidden_states)
            key, value = attn.to_kv(text).chunk(2, dim=-1) if self.fused else (attn.to_k(text), attn.to_v(text))
        elif self.fused:
            query, key, value = attn.to_qkv(hidden_states).chunk(3, dim=-1)
        else:
            query, key, value = attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)
        heads = attn.heads
        dim = key.shape[-1] // heads
        # (rows, L, heads·dim) as (groups, rows/groups·L, heads, dim): under cross-attention a video's frames
        # are consecutive rows, attending as one sequence
        groups = rows // self.frames if cross else rows
        query, key, value = (t.view(groups, -1, heads, dim).transpose(1, 2) for t in (query, key, value))
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)
        out = attend(query, key, value, attn.scale, native=self.native)
        out = out.transpose(1, 2).reshape(rows, -1, heads * dim).to(query.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        if attn.residual_connection:
            out = out + hidden_states
        return out / attn.rescale_output_factor
