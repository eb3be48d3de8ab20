"""The attention-call record (Golden et al. 2024, Figs. 8-9): at every call of a workload's attention
modules, its kind (self, cross, spatial, temporal), query and key lengths, FLOPs and seconds.

A workload names its attention modules once (:class:`AttentionSite`, through the ``AttentionRecord``
role); :func:`record_attention` hooks them for one inference.  Most sites need nothing more than
:func:`find_attention_sites`: the lengths come from the call itself (:func:`call_lengths`), the same
for ``transformers``' attention modules (the attention weights, B×H×Lq×Lk, of eager attention) and
``diffusers``' ``Attention`` (the hidden states and the text they attend to).  A module of another
form gives its own ``lengths``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import attrs
import torch
from torch import nn

from .clock import synced_now

KINDS = ("self", "cross", "spatial", "temporal")


def _kind_or_none(instance, attribute, value) -> None:
    if value is not None and value not in KINDS:
        raise ValueError(f"attention kind {value!r}: expected one of {', '.join(KINDS)}, or None (self or cross "
                         "by whether the call attends to a context)")


@attrs.define(frozen=True)
class AttentionSite:
    """One attention module of a workload: ``name`` (its path, for the record), ``module``, ``kind``
    (None: ``cross`` when a call attends to a context, else ``self_kind``) and ``lengths`` (``(module, args,
    kwargs, output) -> (query_len, key_len, cross)``, or with the batch as a fourth where the hidden states'
    first dimension is not it (jagged sequences); None: :func:`call_lengths`)."""

    name: str = attrs.field(validator=attrs.validators.instance_of(str))
    module: nn.Module = attrs.field(validator=attrs.validators.instance_of(nn.Module))
    kind: str | None = attrs.field(default=None, validator=_kind_or_none)
    self_kind: str = attrs.field(default="self", validator=attrs.validators.in_(("self", "spatial")))
    lengths: Callable | None = attrs.field(default=None, validator=attrs.validators.optional(attrs.validators.is_callable()))


def _joint(module) -> bool:
    """A ``diffusers`` attention whose keys are its own positions and the text's (added K/V: DeepFloyd IF)."""
    return getattr(module, "added_kv_proj_dim", None) is not None and not getattr(module, "only_cross_attention", False)


def _context(kwargs):
    """The states a cross-attention attends to (``diffusers``: ``encoder_hidden_states``; ``transformers``'
    encoder-decoders: ``key_value_states`` or ``encoder_hidden_states``)."""
    context = kwargs.get("encoder_hidden_states")
    return kwargs.get("key_value_states") if context is None else context


def call_lengths(module, args, kwargs, output) -> tuple[int, int, bool]:
    """(query length, key length, cross) of one call: from the attention weights (B, H, Lq, Lk) where the
    module returns them (``transformers``' eager attention: cached keys included), else from the hidden
    states (B, L, D) or (B, C, H, W) and the context attended to."""
    context = _context(kwargs)
    cross = context is not None and not _joint(module)
    weights = output[1] if isinstance(output, tuple) and len(output) > 1 else None
    if torch.is_tensor(weights) and weights.dim() == 4:
        return int(weights.shape[-2]), int(weights.shape[-1]), cross
    hidden = args[0] if args else kwargs["hidden_states"]
    lq = hidden.shape[2] * hidden.shape[3] if hidden.dim() == 4 else hidden.shape[1]
    if context is None:
        return int(lq), int(lq), False
    return int(lq), int(lq + context.shape[1] if not cross else context.shape[1]), cross


def find_attention_sites(root: nn.Module, prefix: str = "", *, self_kind: str = "self") -> list[AttentionSite]:
    """The innermost modules of ``root`` whose class names end in ``Attention`` (``transformers``' and
    ``diffusers``' alike), each a site.  Kinds: ``temporal`` inside a module whose class name says
    ``Temporal`` (a video UNet's temporal transformers); the others' decided per call: ``cross`` when it attends
    to a context (not a joint one: IF's), else ``self_kind`` (``spatial`` in an image UNet)."""
    named = dict(root.named_modules(prefix=prefix))
    found = [n for n, m in named.items() if type(m).__name__.endswith("Attention")]
    leaves = [n for n in found if not any(o.startswith(n + ".") for o in found)]
    temporal = [n + "." for n, m in named.items() if "Temporal" in type(m).__name__]
    return [AttentionSite(name=n, module=named[n], kind="temporal" if any(n.startswith(t) for t in temporal) else None,
                          self_kind=self_kind) for n in leaves]


def _width(hidden) -> int:
    """The model width of hidden states (B, L, D) or (B, C, H, W); 0 when they are not a tensor."""
    if not torch.is_tensor(hidden):
        return 0
    return int(hidden.shape[1] if hidden.dim() == 4 else hidden.shape[-1])


class _Hooks:
    """Forward hooks on the sites: per call, the record's entry."""

    def __init__(self, sites, device: str):
        self.calls, self.device, self._starts, self._handles = [], device, {}, []
        for site in sites:
            self._handles += [site.module.register_forward_pre_hook(self._pre(site), with_kwargs=True),
                              site.module.register_forward_hook(self._post(site), with_kwargs=True)]

    def _pre(self, site):
        def hook(module, args, kwargs):
            self._starts[site.name] = synced_now(self.device)
        return hook

    def _post(self, site):
        def hook(module, args, kwargs, output):
            seconds = synced_now(self.device) - self._starts.pop(site.name)
            lq, lk, cross, *batch = (site.lengths or call_lengths)(module, args, kwargs, output)
            hidden = args[0] if args else kwargs.get("hidden_states")
            batch = int(batch[0] if batch else hidden.shape[0])
            width = getattr(module, "inner_dim", None) or _width(hidden)
            self.calls.append({"index": len(self.calls), "module": site.name,
                               "kind": site.kind or ("cross" if cross else site.self_kind), "query_len": lq, "key_len": lk,
                               "batch": batch, "flops": 4 * batch * lq * lk * int(width), "seconds": seconds})
        return hook

    def remove(self) -> None:
        for h in self._handles:
            h.remove()


@contextlib.contextmanager
def record_attention(sites, device: str = "cpu"):
    """Record every call of the ``sites`` while the block runs: yields the list of calls, in call order, each
    ``{index, module, kind, query_len, key_len, batch, flops, seconds}`` (FLOPs: ``4·B·Lq·Lk·d``, QKᵀ and
    AV, ``d`` the attention's width)."""
    hooks = _Hooks(sites, device)
    try:
        yield hooks.calls
    finally:
        hooks.remove()
