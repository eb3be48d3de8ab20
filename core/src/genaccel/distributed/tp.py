"""Tensor-parallel sharding of a Hugging Face decoder (the architectures of :data:`SHARDING`: Llama,
Mistral, Qwen2, Qwen3, Gemma, Gemma 2, Phi-3, Chameleon) between the ranks of a group.

Sharding is Megatron's, as gpt-fast's ``tp.py``: q/k/v and the MLP's gate/up projections are split
by output columns (whole heads, KV heads included, so the KV cache holds each rank's heads only;
a fused projection, Phi-3's qkv_proj or gate_up_proj, block by block),
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
from ..models.weights import Shard
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
    scale = getattr(module, "embed_scale", None)  # Gemma's scaled embeddings
    if scale is not None:
        out = out * scale.to(out.dtype)
    with region("Communication", "all_reduce"):
        return funcol.wait_tensor(funcol.all_reduce(out, "sum", _group()))


@attrs.frozen(kw_only=True)
class Sharding:
    """What splits how in one decoder layer of an architecture (paths under ``model.layers[i]``).

    ``columns``: linear layers split by output features (whole heads: q, k, v, the MLP's gate and up);
    ``rows``: split by input features, then all-reduced (o_proj, down_proj); ``fused``: column layers
    holding several projections one after another, each block split in N on its own (Phi-3's qkv_proj
    and gate_up_proj), named by what sizes the blocks (``heads``: heads × head size, ``kv_heads``,
    ``ffn``: the MLP's width); ``per_rank_config``: the attention reads its head count from its config
    at run time (Phi-3), so each rank's attention gets a view of the config with its own counts;
    ``head_counts``: the attention's own attributes holding head counts (``num_heads``,
    ``num_key_value_heads``), each set to the rank's share."""

    columns: tuple[str, ...] = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "mlp.gate_proj",
                                "mlp.up_proj")
    rows: tuple[str, ...] = ("self_attn.o_proj", "mlp.down_proj")
    fused: dict = attrs.field(factory=dict)
    per_rank_config: bool = False
    head_counts: tuple[str, ...] = ()


_LLAMA_LIKE = Sharding()
#: The sharding of each architecture, by ``model_type``.
SHARDING = {
    **dict.fromkeys(("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2"), _LLAMA_LIKE),
    "chameleon": Sharding(head_counts=("num_heads", "num_key_value_heads")),
    "phi3": Sharding(columns=(), fused={"self_attn.qkv_proj": ("heads", "kv_heads", "kv_heads"),
                                        "mlp.gate_up_proj": ("ffn", "ffn")}, per_rank_config=True,
                     head_counts=("num_key_value_heads",)),
}


class RankConfig:
    """A config seen by one rank's module: ``overrides`` (its head counts), every other field, and
    every write, the shared config's (so a later ``set_attn_implementation`` reaches it)."""

    def __init__(self, base, **overrides):
        self.__dict__.update(overrides, _base=base)  # plain attributes: torch.compile traces reads of them

    def __getattr__(self, name):  # a field not overridden
        if "_base" not in self.__dict__:  # a copy being rebuilt (copy, pickle) has no base yet
            raise AttributeError(name)
        return getattr(self.__dict__["_base"], name)

    def __setattr__(self, name, value):
        setattr(self.__dict__["_base"], name, value)


def _shard_param(module, name: str, dim: int, rank_: int, n: int, blocks: tuple[int, ...] = ()) -> None:
    """Keep this rank's part of ``module.<name>`` along ``dim`` (a meta tensor stays meta); its
    :class:`genaccel.models.weights.Shard` is kept in ``module.tp_shards`` for filling it later."""
    param = getattr(module, name)
    full = tuple(param.shape)
    if any(b % n for b in blocks or (full[dim],)):
        raise GenaccelError(f"{type(module).__name__}.{name} of {full[dim]} along dim {dim} does not split in {n}")
    shard = Shard(dim, full, rank_, n, blocks)
    if param.is_meta:
        data = torch.empty(shard.shape, dtype=param.dtype, device="meta")
    else:
        data = shard.take(param.detach()).clone()
    setattr(module, name, nn.Parameter(data, requires_grad=param.requires_grad))
    module.tp_shards = {**getattr(module, "tp_shards", {}), name: shard}


def _linear(module, dim: int, rank_: int, n: int, blocks: tuple[int, ...] = ()) -> None:
    _shard_param(module, "weight", dim, rank_, n, blocks)
    if module.bias is not None:
        if dim == 1:
            raise GenaccelError(f"a row-parallel {type(module).__name__} with a bias is not supported")
        _shard_param(module, "bias", 0, rank_, n, blocks)
    module.out_features, module.in_features = module.weight.shape


def _check_heads(cfg, n: int) -> tuple[int, int]:
    heads = cfg.num_attention_heads
    kv_heads = getattr(cfg, "num_key_value_heads", None) or heads
    if heads % n or kv_heads % n:
        divisors = [d for d in range(1, kv_heads + 1) if heads % d == 0 and kv_heads % d == 0]
        raise GenaccelError(f"--tp {n} does not divide the model's {heads} attention heads and {kv_heads} KV heads; "
                            f"use --tp {', '.join(map(str, divisors))}")
    return heads, kv_heads


def _shard_layer(layer, sharding: Sharding, sizes: dict, r: int, n: int, cfg) -> None:
    """One decoder layer's projections split as ``sharding`` says, its attention told its head counts."""
    attn = layer.self_attn
    for path in sharding.columns:
        _linear(layer.get_submodule(path), 0, r, n)
    for path, blocks in sharding.fused.items():
        _linear(layer.get_submodule(path), 0, r, n, tuple(sizes[b] for b in blocks))
    for path in sharding.rows:
        lin = layer.get_submodule(path)
        _linear(lin, 1, r, n)
        lin.register_forward_hook(_all_reduce)
    for norm in (getattr(attn, "q_norm", None), getattr(attn, "k_norm", None)):  # Chameleon: per-head norms
        if norm is not None and norm.weight.dim() == 2:
            _shard_param(norm, "weight", 0, r, n)
            if getattr(norm, "bias", None) is not None:
                _shard_param(norm, "bias", 0, r, n)
    d = sizes["head_dim"]
    counts = {"num_heads": sizes["heads"] // d, "num_key_value_heads": sizes["kv_heads"] // d}
    for attr in sharding.head_counts:
        if attr not in vars(attn):
            raise GenaccelError(f"--tp: {type(attn).__name__} has no {attr} (its sharding declares it); "
                                "this transformers version's attention differs from the one genaccel shards")
        setattr(attn, attr, counts[attr] // n)
    if sharding.per_rank_config:
        attn.config = RankConfig(cfg, num_attention_heads=counts["num_heads"] // n,
                                 num_key_value_heads=counts["num_key_value_heads"] // n)


def shard_causal_lm(hf) -> TensorParallel | None:
    """Shard a decoder-only ``hf`` (``hf.model.layers``, ``hf.model.embed_tokens``, ``hf.lm_head``) of an
    architecture in :data:`SHARDING` in place between the ranks of the group; nothing without a group
    of 2 or more."""
    import torch.distributed as dist

    if not active():
        return None
    r, n = dist.get_rank(), dist.get_world_size()
    cfg = hf.config
    sharding = SHARDING.get(cfg.model_type)
    if sharding is None:
        raise GenaccelError(f"--tp: no sharding is declared for model_type {cfg.model_type!r} "
                            f"(declared: {', '.join(sorted(SHARDING))}); run it without --tp")
    heads, kv_heads = _check_heads(cfg, n)
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    sizes = {"heads": heads * head_dim, "kv_heads": kv_heads * head_dim, "ffn": cfg.intermediate_size,
             "head_dim": head_dim}
    for layer in hf.model.layers:
        _shard_layer(layer, sharding, sizes, r, n, cfg)
    vocab_parallel = _shard_vocabulary(hf, r, n)
    hf.tensor_parallel = TensorParallel(r, n, heads, kv_heads, vocab_parallel)
    return hf.tensor_parallel


def _shard_vocabulary(hf, r: int, n: int) -> bool:
    """The LM head by vocabulary columns (all-gathered) and the embedding by vocabulary rows, when the
    vocabulary splits in ``n`` and they are not tied; whether they were."""
    embed = hf.model.embed_tokens
    if hf.lm_head.out_features % n or hf.lm_head.weight is embed.weight:
        return False
    _linear(hf.lm_head, 0, r, n)
    hf.lm_head.tensor_parallel_size = n
    hf.lm_head.register_forward_hook(_all_gather_last)
    _shard_param(embed, "weight", 0, r, n)  # its vocabulary splits as the head's
    embed.vocab_start = r * embed.weight.shape[0]
    embed.forward = types.MethodType(_vocab_parallel_embedding, embed)
    return True
