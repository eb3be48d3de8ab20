"""Attention of compiled one-token decode steps on the static KV cache (CPU): genaccel's native kernel
(``genaccel_cpu.decode_attention``), or flex attention where it cannot run.

``set_compile`` of :class:`genaccel.llm.causal_lm.HFCausalLM` selects an attention implementation
registered here (:data:`FLEX_DECODE`) on CPU: :data:`SDPA_FLEX_DECODE` when attention is ``sdpa``, the
eager one for an architecture that takes no SDPA (Gemma 2).  An
encoder-decoder's one-token cross attention takes the same path: its modules are marked with
:func:`mark_cross_attention` and read the ``cross_keys`` of the step instead of ``static_keys``.
"""

from __future__ import annotations

import importlib

import torch
from torch.nn.attention.flex_attention import flex_attention
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, eager_mask, sdpa_mask

from ..engine.native import cpu_ops

SDPA_FLEX_DECODE = "genaccel-sdpa-flex-decode"
#: The flex decode attention by the attention it falls back to for everything but one-token steps.  The
#: eager one's name must not hold "sdpa": transformers checks such names against the model's SDPA support.
FLEX_DECODE = {"sdpa": SDPA_FLEX_DECODE, "eager": "genaccel-eager-flex-decode"}
#: Inductor's CPU flex-attention kernel (torch 2.13) reads keys past a key length of 16·k + 8 when the head
#: dimension is 16: with stale keys there (a static cache's previous batch) the output is wrong (measured: key
#: lengths 8, 24, 40 off by up to 76 in the output, every other length 3..59 exact).  A window of that length is
#: read one position longer, the extra position masked as any later one.
_UNSAFE_BLOCK, _UNSAFE_TAIL = 16, 8
CROSS = "genaccel_cross_attention"  # the attribute that marks a cross-attention module
NATIVE_HEAD_DIMS = (16, 32, 64, 128, 256)  # what genaccel_cpu.decode_attention takes


def flex_window(kv_len: int, limit: int) -> int:
    """The number of cached positions a flex decode step reads for ``kv_len`` (at most ``limit``)."""
    if kv_len % _UNSAFE_BLOCK == _UNSAFE_TAIL and kv_len < limit:
        return kv_len + 1
    return kv_len


def mark_cross_attention(module) -> None:
    """``module`` attends to an encoder's states: it reads a step's ``cross_keys``."""
    setattr(module, CROSS, True)


def _eager(module):
    """The attention module's own eager attention (every transformers modeling file defines
    ``eager_attention_forward``; Gemma 2's soft-caps its logits)."""
    fn = _EAGER.get(type(module))
    if fn is None:
        fn = _EAGER[type(module)] = importlib.import_module(type(module).__module__).eager_attention_forward
    return fn


_EAGER: dict = {}
_FALLBACKS = {"sdpa": lambda module: sdpa_attention_forward, "eager": _eager}


def flex_decode(fallback: str):
    """The attention function of :data:`FLEX_DECODE` ``[fallback]``: transformers' ``fallback``
    attention, except for one-token queries on the static cache inside a compiled CPU step.  Those go
    through ``genaccel_cpu.decode_attention`` (:func:`native_decode_attention`), which reads each
    cached key and value row once for the query heads sharing it: a decode step of the small preset
    with int8 weights at ~550 cached positions, 13.6 ms with flex attention, took 12.8 ms with it
    (alternated, minimum of six).  Where the native kernels cannot run they go through
    ``flex_attention``: Inductor's CPU kernel reads the KV cache ~1.3-1.6x as fast as SDPA's CPU
    flash kernel does (small preset, 12 layers, 460-900 cached positions).  ``set_compile`` selects
    this function on CPU.

    ``static_keys`` = (key_valid (B, max_seq_len), pos[, window]): the mask is rebuilt from these
    inputs inside the kernel (neither kernel reads a mask computed in the graph): the valid keys up to
    ``pos``, within the layer's sliding ``window`` when it has one.  ``cross_keys`` = (encoder_valid
    (B, S), None), read by modules marked with :func:`mark_cross_attention`: every valid encoder
    position is seen.  ``softcap`` (Gemma 2) caps the scores as transformers' eager attention does,
    before the mask.

    Keys and values may come from a cache narrower than the model (``bf16-kv``): the native kernel
    reads them as they are; the flex kernel takes the query in the cache's dtype (it accumulates in
    float32) and its output is cast back; every other attention reads them cast to the query's dtype.
    """
    fallback_of = _FALLBACKS[fallback]

    def attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, static_keys=None,
                  cross_keys=None, softcap=None, **kwargs):
        if getattr(module, CROSS, False):
            static_keys = cross_keys
        flex = key.dtype in (torch.float32, torch.bfloat16, torch.float16)  # what Inductor's CPU kernel supports
        if static_keys is None or query.shape[2] != 1 or dropout or not flex or not torch.compiler.is_compiling():
            if softcap is not None:
                kwargs["softcap"] = softcap
            key, value = key.to(query.dtype), value.to(query.dtype)  # a narrower cache's, widened
            return fallback_of(module)(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout,
                                       **kwargs)
        valid, pos, window = (*static_keys, *(None,) * (3 - len(static_keys)))
        if query.device.type == "cpu" and native_decode_attention(query.shape[-1], key.dtype):
            scale = query.shape[-1] ** -0.5 if scaling is None else scaling
            out = torch.ops.genaccel_cpu.decode_attention(query, key, value, valid, pos, window or 0, scale, softcap or 0.0)
            return out, None
        score_mod = _score_mod(valid, pos, window, softcap)
        # a 4-D buffer for Inductor's CPU template (not a view of a 3-D one), in the keys' dtype
        narrow = query.to(key.dtype).clone(memory_format=torch.contiguous_format)
        out = flex_attention(narrow, key, value, score_mod=score_mod, scale=scaling,
                             enable_gqa=query.shape[1] != key.shape[1])
        return out.transpose(1, 2).to(query.dtype).contiguous(), None

    return attention


def native_decode_attention(head_dim: int, cache_dtype: torch.dtype) -> bool:
    """Whether one-token CPU steps of this head dimension over a cache of this dtype take
    ``genaccel_cpu.decode_attention`` (float32 or bfloat16 caches; float16's go through flex attention)."""
    return head_dim in NATIVE_HEAD_DIMS and cache_dtype in (torch.float32, torch.bfloat16) and _native()


@torch.compiler.assume_constant_result
def _native() -> bool:
    """Whether genaccel's CPU kernels run here (decided once, outside the traced step)."""
    return cpu_ops() is not None


def _score_mod(valid, pos, window, softcap):
    """Scores of the keys a one-token query may see, soft-capped first where ``softcap`` is set; -inf elsewhere."""

    def score_mod(score, b, h, q_idx, kv_idx):
        if softcap is not None:
            score = torch.tanh(score / softcap) * softcap
        keep = valid[b, kv_idx]
        if pos is not None:
            last = (pos if pos.dim() == 0 else pos[0]) + q_idx
            keep = keep & (kv_idx <= last)
            if window is not None:
                keep = keep & (kv_idx > last - window)
        return torch.where(keep, score, -float("inf"))

    return score_mod


for _fallback, _name in FLEX_DECODE.items():
    AttentionInterface.register(_name, flex_decode(_fallback))
# transformers' own masks (an encoder's padding) are built as for the fallback; unregistered, they would be dropped
AttentionMaskInterface.register(SDPA_FLEX_DECODE, sdpa_mask)
AttentionMaskInterface.register(FLEX_DECODE["eager"], eager_mask)
