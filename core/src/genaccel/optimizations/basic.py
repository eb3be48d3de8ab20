"""The built-in optimizations' apply functions, for every workload that plays the roles they
require: each calls the workload's switch and returns a note for the report.  Registered by
:mod:`genaccel.plugin.builtin`."""

from __future__ import annotations

import torch

from ..engine import memory
from ..plugin.specs import NotApplied


def sdpa(ctx):
    note = ctx.instance.set_attention("sdpa")
    return "attention through torch.nn.functional.scaled_dot_product_attention" + (f"; {note}" if note else "")


def static_kv(ctx):
    ctx.instance.set_cache("static")
    return ("KV cache preallocated to the run's cache length, written in place at device-side positions; "
            "a decode step reads its filled positions only (all of them under CUDA graphs)")


def bf16_kv(ctx):
    return ctx.instance.set_kv_dtype(torch.bfloat16)


def compile_steps(ctx):
    mode = "reduce-overhead" if "cuda-graph" in ctx.stack.names else "default"
    return ctx.instance.set_compile(mode)


def cuda_graph(ctx):
    return ctx.instance.set_cuda_graph()


def channels_last(ctx):
    return ctx.instance.set_channels_last()


def fused_qkv(ctx):
    return ctx.instance.fuse_qkv()


def deepcache(ctx):
    interval = ctx.config.options.get("cache_interval")
    return ctx.instance.set_step_cache(3 if interval is None else int(interval))


def huge_pages(ctx):
    why = memory.huge_pages_unavailable()
    if why:
        raise NotApplied(why)
    count, nbytes = memory.move_to_huge_pages(ctx.instance.module)
    if not count:
        raise NotApplied(f"no CPU weight storage of {memory.MIN_BYTES / 2**20:g} MiB or more")
    held = memory.huge_page_bytes()
    return (f"{count} weight storages ({nbytes / 2**20:.0f} MiB) copied into memory advised MADV_HUGEPAGE"
            + ("" if held is None else f"; the process holds {held / 2**20:.0f} MiB in huge pages"))
