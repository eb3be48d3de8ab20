"""Cross-attention of a text-to-video UNet's spatial layers with the text projected once per video.

diffusers' ``UNet3DConditionModel`` runs its spatial layers on the frames as batch rows and repeats
each video's text for every frame (``repeat_interleave``), so diffusers' processors project the same
text tokens to keys and values once per frame.  :class:`SharedTextAttention` projects them once per
video and lets the video's frames' queries attend to them as one sequence.  Each query's softmax runs
over the same keys either way, so it is the same attention; the projection's work falls by the frame
count (Make-A-Video small, 8 frames under classifier-free guidance: about 5.5 of 6.3 GFLOP a step).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


class SharedTextAttention:
    """A diffusers attention processor: ``base`` (SDPA's ``AttnProcessor2_0`` or ``FusedAttnProcessor2_0``)
    for self-attention, and for cross-attention whose context repeats for every ``frames`` consecutive
    rows, keys and values projected once per ``frames`` rows (``fused``: through the fused ``to_kv``)."""

    def __init__(self, base, frames: int, *, fused: bool):
        if frames < 1:
            raise ValueError(f"frames {frames}: expected at least 1")
        self.base, self.frames, self.fused = base, frames, fused

    def __call__(self, attn, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None, *args, **kwargs):
        rows = hidden_states.shape[0]
        if (encoder_hidden_states is None or attention_mask is not None or hidden_states.ndim != 3
                or rows % self.frames or encoder_hidden_states.shape[0] != rows
                or attn.spatial_norm is not None or attn.group_norm is not None):
            return self.base(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)
        videos = rows // self.frames
        text = encoder_hidden_states[:: self.frames]  # one row per video (the rows of a video are equal)
        if attn.norm_cross:
            text = attn.norm_encoder_hidden_states(text)
        query = attn.to_q(hidden_states)
        if self.fused:
            key, value = attn.to_kv(text).chunk(2, dim=-1)
        else:
            key, value = attn.to_k(text), attn.to_v(text)
        heads = attn.heads
        dim = key.shape[-1] // heads
        # (rows, L, heads·dim) as (videos, frames·L, heads, dim): a video's frames are consecutive rows
        query = query.view(videos, -1, heads, dim).transpose(1, 2)
        key = key.view(videos, -1, heads, dim).transpose(1, 2)
        value = value.view(videos, -1, heads, dim).transpose(1, 2)
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)
        out = F.scaled_dot_product_attention(query, key, value, dropout_p=0.0, is_causal=False)
        out = out.transpose(1, 2).reshape(rows, -1, heads * dim).to(query.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        if attn.residual_connection:
            out = out + hidden_states
        return out / attn.rescale_output_factor
