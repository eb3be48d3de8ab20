"""Random weights of the real architectures: reproducible, drawn in float32 whatever the dtype, and
sliced where a model is sharded (each rank draws the whole tensor and keeps its slice, so every
tensor-parallel size gives the same model).

A parameter that is a slice of a larger tensor (a tensor-parallel rank's shard) is marked on its
module: ``module.tp_shards[name]`` is its :class:`Shard`, set by :mod:`genaccel.distributed.tp` when it
shards a model on the meta device.
"""

from __future__ import annotations

import attrs
import torch


@attrs.frozen
class Shard:
    """Rank ``rank``'s part of a tensor of shape ``full`` split between ``ranks`` along ``dim``: of each
    block (``blocks``: the sizes along ``dim`` of the projections fused in it, as Phi-3's q, k and v rows;
    by default one block, the whole), its ``rank``-th of ``ranks`` equal pieces, concatenated."""

    dim: int
    full: tuple[int, ...] = attrs.field(converter=tuple)
    rank: int
    ranks: int = attrs.field(validator=attrs.validators.ge(1))
    blocks: tuple[int, ...] = attrs.field(default=(), converter=tuple)

    def __attrs_post_init__(self):
        if not self.blocks:
            object.__setattr__(self, "blocks", (self.full[self.dim],))
        if sum(self.blocks) != self.full[self.dim] or any(b % self.ranks for b in self.blocks):
            raise ValueError(f"blocks {self.blocks} do not tile {self.full[self.dim]} in pieces of {self.ranks}")

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(size // self.ranks if d == self.dim else size for d, size in enumerate(self.full))

    def ranges(self) -> list[tuple[int, int]]:
        """The [start, stop) ranges along ``dim`` of the whole tensor that this rank holds, in order."""
        out, start = [], 0
        for size in self.blocks:
            piece = size // self.ranks
            out.append((start + self.rank * piece, start + (self.rank + 1) * piece))
            start += size
        return out

    def take(self, whole: torch.Tensor) -> torch.Tensor:
        """This rank's part of ``whole``."""
        return torch.cat([whole.narrow(self.dim, a, b - a) for a, b in self.ranges()], dim=self.dim)


def slice_of(module, name: str) -> Shard | None:
    """The :class:`Shard` ``module.<name>`` is, when it is a slice of a larger tensor; else None."""
    return getattr(module, "tp_shards", {}).get(name)


def _fill_slice(module, name: str, param, std: float, generator) -> bool:
    """Fill a sharded ``param`` with its slice of the whole tensor's random draw (the same values
    as an unsharded model); False when ``module.<name>`` is not sharded."""
    shard = slice_of(module, name)
    if shard is None:
        return False
    whole = torch.empty(shard.full, device=param.device).normal_(0.0, std, generator=generator)  # float32, as unsharded
    param.copy_(shard.take(whole))
    return True



def init_random_weights(module, *, seed: int, std: float = 0.02, norm_weight: float = 1.0) -> None:
    """Fill a model materialized with ``to_empty`` with reproducible random weights.

    One generator walks the parameters in module order, each drawn once (a tied LM head is its
    embedding's draw), so the same seed and architecture always give the same weights.  Norm
    scales are ``norm_weight`` (the identity's: 1, or 0 for norms that scale by ``1 + weight`` as
    Gemma's) and their shifts zeros; other weights ~ N(0, std), drawn in float32 whatever the
    model's dtype (a bfloat16 model holds its float32 twin's weights, rounded); biases zero.
    """
    first = next(module.parameters())
    gen = torch.Generator(device=first.device).manual_seed(seed)
    drawn = set()
    with torch.no_grad():
        for sub in module.modules():
            is_norm = "norm" in type(sub).__name__.lower()
            for name, param in sub.named_parameters(recurse=False):
                if id(param) in drawn:
                    continue
                drawn.add(id(param))
                if is_norm:
                    param.fill_(norm_weight if name == "weight" else 0.0)
                elif name == "bias":
                    param.zero_()
                elif not _fill_slice(sub, name, param, std, gen):  # a tensor-parallel shard: its slice of the whole
                    param.copy_(torch.empty(param.shape, device=param.device).normal_(0.0, std, generator=gen))


def materialize(module, device: str, dtype, seed: int):
    """A module built on the meta device, on ``device`` with reproducible random weights."""
    module = module.to_empty(device=device)
    init_random_weights(module, seed=seed)
    for buf_owner in module.modules():  # buffers (position ids) are not restored by to_empty
        for name, buf in buf_owner.named_buffers(recurse=False):
            if name == "position_ids":
                buf.copy_(torch.arange(buf.shape[-1], device=device).expand_as(buf))
    return _to(module, device, dtype)


def _to(module, device: str, dtype):
    module = module.to(device)
    return module if dtype == torch.float32 else module.to(dtype)
