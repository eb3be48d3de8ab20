"""`genaccel profile` and `genaccel characterize`: the study's Section III for any workload."""

from __future__ import annotations

import statistics
from pathlib import Path

import attrs
import torch

from .measure import measure_bandwidth, measure_gemm_peak, synced_now
from .profiling import CATEGORIES, COLORS, OVERHEAD, annotations, breakdown, count_flops, shares
from .results import CaseResult, case_label, plural
from .roles import WeightStreaming
from .runner import RunConfig, make_batches, prepare, release_memory

GRAPH_STAGES = ("compile", "graph")


def _phase_seconds(results) -> dict[str, float]:
    """Seconds per phase, summed over a pass's batch results."""
    seconds: dict[str, float] = {}
    for r in results:
        for k, v in r.phases.items():
            seconds[k] = seconds.get(k, 0.0) + v
    return seconds


def _rates(w: dict, seconds: float | None, peak_flops: float, bandwidth: float) -> dict:
    """Achieved FLOP/s, MFU and MBU of a phase's work over ``seconds``."""
    t = seconds or None
    return {
        "seconds": t,
        "flops_per_s": w["flops"] / t if t else None,
        "mfu": w["flops"] / t / peak_flops if t else None,
        "mbu": w["bytes"] / t / bandwidth if t and w["bytes"] else None,
    }


def _profile_once(registry, config: RunConfig, trace_path: Path | None, strict: bool = True, count: bool = True) -> dict:
    ctx = prepare(registry, config, strict=strict)
    batches = make_batches(ctx)
    for _ in range(max(config.warmup, 1)):
        ctx.decoder.run(ctx, batches[0])
    plain, plain_s = None, float("inf")
    for _ in range(2):  # the faster of two unprofiled passes is the reference for dilation
        t0 = synced_now(config.device)
        results = [ctx.decoder.run(ctx, b) for b in batches]
        elapsed = synced_now(config.device) - t0
        if elapsed < plain_s:
            plain, plain_s = results, elapsed
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
    unprofiled = _phase_seconds(plain)
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


def profile_workload(registry, config: RunConfig, trace_path: Path | None = None, *, strict: bool = True) -> dict:
    """Profile warm iterations; with compile or CUDA graphs in the stack, categories come from an eager twin."""
    spec = registry.workload(config.workload)
    stack = registry.resolve_stack(spec, config.optimizations, config.device, strict=strict)
    graph_opts = [s.name for s in stack.applied if s.stage in GRAPH_STAGES]
    result = _profile_once(registry, config, trace_path, strict, count=not graph_opts)
    result.update(workload=config.workload, device=config.device, batch_size=config.batch_size,
                  preset=config.preset, checkpoint=config.checkpoint, method="measured")
    if graph_opts:
        twin_cfg = attrs.evolve(config, optimizations=tuple(n for n in config.optimizations if n not in graph_opts))
        twin = _profile_once(registry, twin_cfg, None, strict)
        rest = OVERHEAD[config.device]
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
    return result


def work_markdown(profiles: list[dict]) -> str:
    from .report import table

    def num(x, scale=1.0, spec=".2f"):
        return "–" if x is None else format(x / scale, spec)

    rows = []
    for p in profiles:
        for name, w in (p.get("work") or {}).get("phases", {}).items():
            rows.append([p["workload"], p["label"], name, num(w["flops"], 1e9), num(w["bytes"], 1e6, ".1f"),
                         num(w["arithmetic_intensity"], 1, ".1f"), num(w["flops_per_s"], 1e9, ".1f"),
                         num(w["mfu"] and 100 * w["mfu"], 1, ".1f"), num(w["mbu"] and 100 * w["mbu"], 1, ".0f")])
    return table(["workload", "stack", "phase", "GFLOP", "MB read", "FLOP/byte", "GFLOP/s", "MFU %", "MBU %"], rows)


def plot_breakdown(profiles: list[dict], path: Path) -> Path:
    """Stacked bars per workload and phase, normalized to 100%, fixed category order and colors."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars = [(p, name, entry) for p in profiles for name, entry in p["phases"].items()]
    device = profiles[0]["device"]
    order = [*CATEGORIES, OVERHEAD[device]]
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(bars) + 2), 4.5))
    bottoms = [0.0] * len(bars)
    for cat in order:
        vals = [100 * shares(entry, device).get(cat, 0.0) for _, _, entry in bars]
        ax.bar(range(len(bars)), vals, bottom=bottoms, color=COLORS[cat], label=cat, edgecolor="white", linewidth=0.3)
        bottoms = [b + v for b, v in zip(bottoms, vals)]
    labels = [f"{p['workload']}\n{p['label']}\n{name}" for p, name, _ in bars]
    ax.set_xticks(range(len(bars)), labels, fontsize=7)
    ax.set_ylabel("share of phase wall time (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left")
    ax.set_title("Where inference time goes")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def breakdown_markdown(profiles: list[dict]) -> str:
    from .report import table

    device = profiles[0]["device"]
    order = [*CATEGORIES, OVERHEAD[device]]
    rows = []
    for p in profiles:
        for name, entry in p["phases"].items():
            sh = shares(entry, device)
            rows.append([p["workload"], p["label"], name, f"{entry['wall_us'] / 1e3 / entry['calls']:.2f}",
                         str(entry["calls"]), *(f"{100 * sh.get(c, 0):.1f}" for c in order),
                         f"{entry['dilation']:.2f}" if entry.get("dilation") else "–"])
    return table(["workload", "stack", "phase", "ms/call", "calls", *(f"{c} %" for c in order), "dilation"], rows)


# --- characterize ----------------------------------------------------------------------------------


def _stats(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"min": min(values), "max": max(values), "mean": statistics.fmean(values)}


def characterize(case: CaseResult) -> dict:
    """Table II form from a run's per-sample records: per-modality lengths, decode steps, latency,
    and the units of work per sample in the workload's unit."""
    recs = case.samples
    inputs = {k[len("input_"):]: _stats([r.extra[k] for r in recs]) for k in recs[0].extra if k.startswith("input_")}
    if not inputs:
        inputs = {"tokens": _stats([r.input_tokens for r in recs])}
    autoregressive = any(r.ttft_s is not None for r in recs)
    return {
        "workload": case.workload,
        "samples": len(recs),
        "input": inputs,
        "unit": case.unit,
        "units": _stats([r.units for r in recs]),
        "output_tokens": _stats([r.output_tokens for r in recs]),
        "decode_steps": _stats([r.output_tokens - 1 for r in recs]) if autoregressive else None,
        "latency_ms": _stats([r.latency_s * 1e3 for r in recs]),
    }


def characterize_markdown(rows: list[dict]) -> str:
    from .report import table

    def fmt(st):
        return "–" if not st else f"{st['min']:.0f} / {st['max']:.0f} / {st['mean']:.1f}"

    body = []
    for r in rows:
        for modality, st in r["input"].items():
            body.append([r["workload"], modality, fmt(st), fmt(r["output_tokens"]),
                         f"{r['decode_steps']['mean']:.1f}" if r["decode_steps"] else "N/A",
                         f"{fmt(r['units'])} {plural(r['unit'])}", f"{r['latency_ms']['mean']:.1f}", str(r["samples"])])
    return table(["workload", "input modality", "input min / max / avg", "output min / max / avg", "decode steps (avg)",
                  "units of work min / max / avg", "mean latency (ms)", "samples"], body)


def plot_latency_distribution(cases: list[CaseResult], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(cases), figsize=(4 * len(cases), 3.5), squeeze=False)
    for ax, case in zip(axes[0], cases):
        lat = [r.latency_s * 1e3 for r in case.samples]
        ax.hist(lat, bins=min(30, max(5, len(lat) // 2)), color="#3b75af")
        ax.set_title(case.workload, fontsize=9)
        ax.set_xlabel("end-to-end latency per sample (ms)")
        ax.set_ylabel("samples")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
