"""What decoders and optimizations see of a run (:class:`RunContext`), and the run's batches with the
cache length they need."""

from __future__ import annotations

import math
import os

import attrs

from ..errors import GenaccelError
from ..plugin.role import Role, offers
from ..plugin.roles import TokenModel
from ..plugin.specs import DecoderSpec, Stack, WorkloadSpec
from .config import RunConfig


@attrs.define(kw_only=True)
class RunContext:
    """A prepared run: its config (options checked), workload spec and built instance, the stack as
    applied so far, the decoder (and its spec), the cache length its batches need, the optimizations' notes."""

    config: RunConfig
    workload: WorkloadSpec
    instance: object
    stack: Stack
    decoder: object = None
    decoder_spec: DecoderSpec | None = None
    max_seq_len: int = 0
    notes: dict = attrs.field(factory=dict)
    batches: list = attrs.field(factory=list)  # the run's batches, once made
    rank: int = attrs.field(factory=lambda: int(os.environ.get("RANK", "0")))
    world_size: int = attrs.field(factory=lambda: int(os.environ.get("WORLD_SIZE", "1")))

    def has(self, role: type[Role]) -> bool:
        """Whether the workload plays ``role`` (``ctx.has(MediaCodec)``)."""
        return offers(self.workload.roles, role)

    def calibration_batch(self) -> list:
        """A real batch for optimizations that measure the model before changing it."""
        if not self.batches:
            self.batches = make_batches(self)
        return self.batches[0]

    @property
    def device(self) -> str:
        return self.config.device

    @property
    def seed(self) -> int:
        return self.config.seed


def fit_cache(config: RunConfig, batches: list[list]) -> int:
    """Cache positions for the run: a batch's prompts are left-padded to its longest, and it decodes
    as many steps as its longest request, so each batch needs the sum of those two."""

    def need(batch) -> tuple[int, int]:
        return max(len(s.input_ids) for s in batch), max(s.max_new_tokens for s in batch)

    if config.cache_len is None:
        return max(64, math.ceil(max(sum(need(b)) for b in batches) / 64) * 64)
    for batch in batches:
        prompt, new = need(batch)
        if prompt + new > config.cache_len:
            who = f"sample {batch[0].id}" if len(batch) == 1 else "the batch of samples " + ", ".join(str(s.id) for s in batch)
            raise GenaccelError(
                f"{who}: a prompt of {prompt} tokens (padded to the batch's longest) plus {new} new tokens does "
                f"not fit --cache-len {config.cache_len}; raise --cache-len to at least {prompt + new} "
                "or lower --max-new-tokens"
            )
    return config.cache_len


def make_batches(ctx: RunContext, samples: list | None = None) -> list[list]:
    """The run's samples (the workload's own unless given) in whole batches, and the cache sized to them."""
    config = ctx.config
    if samples is None:
        samples = ctx.instance.make_samples(config.samples, config.seed, config.max_new_tokens, seq_len=config.seq_len)
    bs = config.batch_size
    if len(samples) % bs:  # whole batches only: a ragged last batch would re-shape static caches
        samples = samples + samples[: bs - len(samples) % bs]
    batches = [samples[i : i + bs] for i in range(0, len(samples), bs)]
    ctx.max_seq_len = fit_cache(config, batches) if ctx.has(TokenModel) else 0  # a KV cache to size
    return batches
