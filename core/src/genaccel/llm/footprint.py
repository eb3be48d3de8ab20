"""Byte accounting of a step protocol: weight bytes a decode step reads, KV bytes per token."""

from __future__ import annotations

import torch
from torch import nn


def nbytes(t: torch.Tensor) -> int:
    """Storage bytes of a (possibly quantized tensor-subclass) parameter."""
    inner = getattr(t, "__tensor_flatten__", None)
    if inner is not None and type(t) not in (torch.Tensor, nn.Parameter):
        names, _ = t.__tensor_flatten__()
        return sum(nbytes(getattr(t, n)) for n in names)
    return t.numel() * t.element_size()


_nbytes = nbytes  # the name other modules imported


class StepBytes:
    """Mixed into a step protocol with ``hf``, ``embed_tokens``, ``lm_head``, ``num_layers``,
    ``num_kv_heads``, ``head_dim``, ``dtype`` and ``kv_dtype`` (the cache's where it differs, else None)."""

    def weight_bytes_per_step(self) -> int:
        """Bytes of weights read by one decode step: everything but the embedding table."""
        skip = {id(p) for p in self.embed_tokens.parameters()}
        total = sum(nbytes(p) for p in self.hf.parameters() if id(p) not in skip)
        if any(id(p) in skip for p in self.lm_head.parameters()):  # tied embeddings: the head reads it
            total += sum(nbytes(p) for p in self.lm_head.parameters())
        return total

    def kv_bytes_per_token(self) -> int:
        return 2 * self.num_layers * self.num_kv_heads * self.head_dim * (self.kv_dtype or self.dtype).itemsize
