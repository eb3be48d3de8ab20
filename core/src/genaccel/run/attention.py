"""The attention-call record of any workload that plays ``AttentionRecord`` (Golden et al. 2024, Figs. 8-9):
one inference of one sample on the baseline stack, truncated to one period of the model (one denoising step
for diffusion, one parallel-decoding step for masked tokens, a whole generation for a token model), every
attention call's kind and query and key lengths; and the same at each image size asked for (Fig. 9)."""

from __future__ import annotations

import attrs

from ..engine.attention import record_attention
from ..engine.clock import synced_now
from ..plugin.registry import Registry
from .case import release_memory
from .config import RunConfig
from .context import make_batches
from .prepare import prepare
from .resolve import resolve


def record_workload(registry: Registry, base: RunConfig, *, image_size: int | None = None) -> dict:
    """The record of one inference of the workload ``base`` names (its model, decoder, device, dtype, seed and
    options; one sample, no optimization) at ``image_size`` where given: ``{workload, image_size, period_options,
    seconds, calls}``, each call ``{index, module, kind, query_len, key_len, batch, flops, seconds}``."""
    options = dict(base.options) | ({"image_size": image_size} if image_size is not None else {})
    config = attrs.evolve(base, samples=1, batch_size=1, optimizations=(), options=options)
    ctx = prepare(resolve(registry, config))
    inst = ctx.instance
    ctx.config = attrs.evolve(ctx.config, options={**ctx.config.options, **inst.period_options})
    batch = make_batches(ctx)[0]
    with record_attention(inst.attention_sites(), config.device) as calls:
        t0 = synced_now(config.device)
        ctx.decoder.run(ctx, batch)
        seconds = synced_now(config.device) - t0
    record = {"workload": config.workload, "image_size": image_size, "period_options": dict(inst.period_options),
              "seconds": seconds, "calls": list(calls)}
    del ctx, inst
    release_memory()
    return record


def length_summary(calls: list[dict]) -> dict:
    """Per kind: calls, the min and max query and key lengths, and whether the query length stays constant."""
    out = {}
    for kind in dict.fromkeys(c["kind"] for c in calls):
        own = [c for c in calls if c["kind"] == kind]
        q, k = [c["query_len"] for c in own], [c["key_len"] for c in own]
        out[kind] = {"calls": len(own), "query_min": min(q), "query_max": max(q), "key_min": min(k),
                     "key_max": max(k), "constant": len(set(q)) == 1 and len(set(k)) == 1}
    return out
