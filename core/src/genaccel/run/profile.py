"""`genaccel profile`: where a workload's inference time goes (the study's Section III), per phase and
operator category, with the work (FLOPs, bytes) of each phase against the machine's peaks."""

from __future__ import annotations

from pathlib import Path

import attrs
import torch

from ..engine.clock import synced_now
from ..engine.machine import measure_bandwidth, measure_gemm_peak
from ..engine.profiling import OVERHEAD, annotations, breakdown, count_flops
from ..plugin.registry import Registry
from ..plugin.roles import WeightStreaming
from ..plugin.specs import device_type
from ..report.results import case_label
from .case import release_memory
from .context import make_batches
from .prepare import prepare
from .resolve import ResolvedRun, resolve
from .summary import phase_totals

GRAPH_STAGES = ("compile", "graph")


def _rates(w: dict, seconds: float | None, peak_flops: float, bandwidth: float) -> dict:
    """Achieved FLOP/s, MFU and MBU of a phase's work over ``seconds``."""
    t = seconds or None
    return {
        "seconds": t,
        "flops_per_s": w["flops"] / t if t else None,
        "mfu": w["flops"] / t / peak_flops if t else None,
        "mbu": w["bytes"] / t / bandwidth if t and w["bytes"] else None,
    }


def _plain_passes(ctx) -> tuple[list, float]:
    """Warm-up, then the faster of two unprofiled passes (the reference for the profiler's dilation)."""
    for _ in range(max(ctx.config.warmup, 1)):
        ctx.decoder.run(ctx, ctx.batches[0])
    plain, plain_s = None, float("inf")
    for _ in range(2):
        t0 = synced_now(ctx.device)
        results = [ctx.decoder.run(ctx, b) for b in ctx.batches]
        elapsed = synced_now(ctx.device) - t0
        if elapsed < plain_s:
            plain, plain_s = results, elapsed
    return plain, plain_s


def _profile_once(run: ResolvedRun, trace_path: Path | None, count: bool = True) -> dict:
    config = run.config
    ctx = prepare(run)
    batches = ctx.batches = make_batches(ctx)
    plain, plain_s = _plain_passes(ctx)
    activities = [torch.profiler.ProfilerActivity.CPU]
    if torch.device(config.device).type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    schedule = torch.profiler.schedule(wait=0, warmup=1, active=1, repeat=1)  # one pass warms the profiler up
    captured = {}

    def ready(prof):
        captured["events"] = prof.events()
        if trace_path is not None:
            prof.export_chrome_trace(str(trace_path))

    with annotations(ctx.instance.module), torch.profiler.profile(
        activities=activities, schedule=schedule, on_trace_ready=ready
    ) as prof:
        for _ in range(2):
            t0 = synced_now(config.device)
            for b in batches:
                ctx.decoder.run(ctx, b)
            profiled_s = synced_now(config.device) - t0
            prof.step()
    phases = breakdown(captured["events"], config.device)
    unprofiled = phase_totals(plain)
    result = {
        "label": case_label(ctx.stack.names, decoder=config.decoder, skipped=ctx.stack.skipped, tp=config.tp),
        "optimizations": list(ctx.stack.names),
        "skipped_optimizations": [attrs.asdict(s) for s in ctx.stack.skipped],
        "unprofiled_s": plain_s,
        "profiled_s": profiled_s,
        "dilation": profiled_s / plain_s if plain_s else None,
        "phases": {
            name: {**entry, "unprofiled_us": unprofiled.get(name, 0.0) * 1e6,
                   "dilation": entry["wall_us"] / (unprofiled[name] * 1e6) if unprofiled.get(name) else None}
            for name, entry in phases.items()
        },
    }
    if count:
        result["work"] = _work(ctx, batches, plain, unprofiled, config)
    del ctx
    release_memory()
    return result


def _work(ctx, batches, plain, seconds, config) -> dict:
    """FLOPs per phase (one counted pass), bytes per phase where the model says what a step reads,
    arithmetic intensity, and achieved FLOP/s and bytes/s against the machine's measured peaks."""
    with count_flops() as flops:
        for b in batches:
            ctx.decoder.run(ctx, b)
    inst = ctx.instance
    nbytes: dict[str, float] = {}
    if ctx.has(WeightStreaming):
        weights, per_token = inst.weight_bytes_per_step(), inst.kv_bytes_per_token()
        steps = sum(r.decode_steps for r in plain)
        nbytes["decode"] = steps * weights + sum(r.kv_tokens_read for r in plain) * per_token
        prompt_tokens = sum(len(s.input_ids) for b in batches for s in b)
        nbytes["prefill"] = len(batches) * weights + prompt_tokens * per_token
    peak_flops = measure_gemm_peak(config.device, getattr(torch, config.dtype))
    bandwidth = measure_bandwidth(config.device)
    out = {"gemm_peak_flops_per_s": peak_flops, "bandwidth_bytes_per_s": bandwidth, "phases": {}}
    for name, total in flops.items():
        b = nbytes.get(name)
        w = {"flops": total, "bytes": b, "arithmetic_intensity": total / b if b else None}
        out["phases"][name] = {**w, **_rates(w, seconds.get(name), peak_flops, bandwidth)}
    return out


def profile_workload(registry: Registry, run: ResolvedRun, trace_path: Path | None = None, *,
                     strict: bool = True) -> dict:
    """Profile warm iterations; with compile or CUDA graphs in the stack, categories come from an eager
    twin (the same run without those steps, resolved from ``registry``)."""
    config = run.config
    graph_opts = [s.name for s in run.stack.applied if s.stage in GRAPH_STAGES]
    result = _profile_once(run, trace_path, count=not graph_opts)
    result.update(workload=config.workload, device=config.device, batch_size=config.batch_size,
                  preset=config.preset, checkpoint=config.checkpoint, method="measured")
    if graph_opts:
        twin_cfg = attrs.evolve(config, optimizations=tuple(n for n in config.optimizations if n not in graph_opts))
        twin = _profile_once(resolve(registry, twin_cfg, strict=strict, device=False), None)
        _scale_to_twin(result, twin, graph_opts, OVERHEAD[device_type(config.device)])
    return result


def _scale_to_twin(result: dict, twin: dict, graph_opts: list[str], rest: str) -> None:
    """A compiled run's categories from its eager twin's split, scaled to the run's own operator time."""
    for name, entry in result["phases"].items():
        twin_entry = twin["phases"].get(name)
        if not twin_entry:
            continue
        ops_time = entry["wall_us"] - entry[rest]
        twin_ops = sum(twin_entry["categories"].values()) or 1.0
        entry["measured_categories"] = entry["categories"]
        entry["categories"] = {k: v / twin_ops * ops_time for k, v in twin_entry["categories"].items()}
    result["method"] = (f"{', '.join(graph_opts)} fuse operators, so the category split comes from an eager twin "
                        f"(stack {twin['label']}) scaled to this run's operator time; the {rest.lower()} share is "
                        "measured on this run")
    result["eager_twin"] = twin
    result["work"] = {**twin.pop("work"), "counted_on": f"eager twin ({twin['label']})"}
    work = result["work"]
    for name, w in work["phases"].items():  # rates use this run's own phase times
        t = result["phases"].get(name, {}).get("unprofiled_us", 0) / 1e6
        w.update(_rates(w, t, work["gemm_peak_flops_per_s"], work["bandwidth_bytes_per_s"]))
