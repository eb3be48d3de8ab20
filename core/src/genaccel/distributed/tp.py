"""Tensor-parallel sharding of a Hugging Face decoder (Llama, Chameleon) between the ranks of a group.

Sharding is Megatron's, as gpt-fast's ``tp.py``: q/k/v and the MLP's gate/up projections are split
by output columns (whole heads, KV heads included, so the KV cache holds each rank's heads only),
o_proj and down_proj by input rows followed by an all-reduce, the LM head by vocabulary columns
followed by an all-gather, the embedding by vocabulary rows (each rank looks up the ids it holds,
zeros for the others, then an all-reduce); norms are replicated, and the embedding and head too
when the vocabulary does not split in N or they are tied.  The collectives are
``torch.distributed._functional_collectives``, which torch.compile traces, so compile and CUDA
graphs still apply.  Sharding happens on the meta device, before weights exist: a rank
materializes only its shard (:mod:`genaccel.models.weights` draws each whole tensor and keeps the
rank's slice; :mod:`genaccel.models.slices` reads only the slice from a checkpoint).
"""

from __future__ import annotations

import types

import attrs
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.distributed import _functional_collectives as funcol

from ..engine.profiling import region
from ..errors import GenaccelError
from .group import active


@attrs.frozen
class TensorParallel:
    """How a model was sharded (``hf_model.tensor_parallel``)."""

    rank: int
    world_size: int
    heads: int  # of the whole model
    kv_heads: int
    vocab_parallel: bool  # the LM head and the embedding split by vocabulary (else replicated)


def _group():
    return dist.group.WORLD


def _all_reduce(module, args, out):
    with region("Communication", "all_reduce"):
        return funcol.wait_tensor(funcol.all_reduce(out, "sum", _group()))


def _all_gather_last(module, args, out):
    with region("Communication", "all_gather"):
        gathered = funcol.wait_tensor(funcol.all_gather_single(out.contiguous(), 0, _group()))  # ranks stacked on dim 0
        return torch.cat(gathered.chunk(module.tensor_parallel_size, 0), dim=-1)


def _vocab_parallel_embedding(module, ids):
    """The forward of an embedding split by vocabulary rows: this rank's rows, zeros for ids it
    does not hold, summed over the ranks (each id is held by one rank, so the sum is exact)."""
    local = ids - module.vocab_start
    outside = (local < 0) | (local >= module.weight.shape[0])
    out = F.embedding(local.masked_fill(outside, 0), module.weight).masked_fill(outside.unsqueeze(-1), 0)
    with region("Communication", "all_reduce"):
        return funcol.wait_tensor(funcol.all_reduce(out, "sum", _group()))


def _shard_param(module, name: str, dim: int, rank_: int, n: int) -> None:
    """Keep this rank's slice of ``module.<name>`` along ``dim`` (a meta tensor stays meta); the
    full shape is kept in ``module.tp_shards`` for :func:`fill_shard`."""
    param = getattr(module, name)
    full = tuple(param.shape)
    if full[dim] % n:
        raise GenaccelError(f"{type(module).__name__}.{name} of {full[dim]} along dim {dim} does not split in {n}")
    if param.is_meta:
        shape = list(full)
        shape[dim] //= n
        data = torch.empty(shape, dtype=param.dtype, device="meta")
    else:
        data = param.detach().chunk(n, dim)[rank_].clone()
    setattr(module, name, nn.Parameter(data, requires_grad=param.requires_grad))
    shards = dict(getattr(module, "tp_shards", {}))
    shards[name] = (dim, full, rank_, n)
    module.tp_shards = shards


def _linear(module, dim: int, rank_: int, n: int) -> None:
    _shard_param(module, "weight", dim, rank_, n)
    if module.bias is not None:
        if dim == 1:
            raise GenaccelError(f"a row-parallel {type(module).__name__} with a bias is not supported")
        _shard_param(module, "bias", 0, rank_, n)
    module.out_features, module.in_features = module.weight.shape


def shard_causal_lm(hf) -> TensorParallel | None:
    """Shard a Llama-like ``hf`` (``hf.model.layers[i].self_attn``/``.mlp``, ``hf.lm_head``) in
    place between the ranks of the group; nothing without a group of 2 or more."""
    if not active():
        return None
    r, n = dist.get_rank(), dist.get_world_size()
    cfg = hf.config
    heads = cfg.num_attention_heads
    kv_heads = getattr(cfg, "num_key_value_heads", None) or heads
    if heads % n or kv_heads % n:
        divisors = [d for d in range(1, kv_heads + 1) if heads % d == 0 and kv_heads % d == 0]
        raise GenaccelError(f"--tp {n} does not divide the model's {heads} attention heads and {kv_heads} KV heads; "
                            f"use --tp {', '.join(map(str, divisors))}")
    for layer in hf.model.layers:
        attn, mlp = layer.self_attn, layer.mlp
        for lin in (attn.q_proj, attn.k_proj, attn.v_proj, mlp.gate_proj, mlp.up_proj):
            _linear(lin, 0, r, n)
        for lin in (attn.o_proj, mlp.down_proj):
            _linear(lin, 1, r, n)
            lin.register_forward_hook(_all_reduce)
        for norm in (getattr(attn, "q_norm", None), getattr(attn, "k_norm", None)):  # Chameleon: per-head norms
            if norm is not None and norm.weight.dim() == 2:
                _shard_param(norm, "weight", 0, r, n)
                if getattr(norm, "bias", None) is not None:
                    _shard_param(norm, "bias", 0, r, n)
        for attr, total in (("num_heads", heads), ("num_key_value_heads", kv_heads)):
            if hasattr(attn, attr):
                setattr(attn, attr, total // n)
    embed = hf.model.embed_tokens
    vocab_parallel = hf.lm_head.out_features % n == 0 and hf.lm_head.weight is not embed.weight
    if vocab_parallel:
        _linear(hf.lm_head, 0, r, n)
        hf.lm_head.tensor_parallel_size = n
        hf.lm_head.register_forward_hook(_all_gather_last)
        _shard_param(embed, "weight", 0, r, n)  # its vocabulary splits as the head's
        embed.vocab_start = r * embed.weight.shape[0]
        embed.forward = types.MethodType(_vocab_parallel_embedding, embed)
    hf.tensor_parallel = TensorParallel(r, n, heads, kv_heads, vocab_parallel)
    return hf.tensor_parallel
