"""The apply functions of the diffusion optimizations (``channels-last``, ``fused-qkv``, ``deepcache``), registered by
:mod:`genaccel.builtin.registration`; they call the workload's switches
(:class:`genaccel.denoise.LatentDiffusion`)."""

from __future__ import annotations


def _channels_last(ctx):
    return ctx.instance.set_channels_last()


def _fused_qkv(ctx):
    return ctx.instance.fuse_qkv()


def _deepcache(ctx):
    interval = ctx.config.options.get("cache_interval")
    return ctx.instance.set_step_cache(3 if interval is None else int(interval))
