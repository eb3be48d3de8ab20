"""A case's summary figures from its batches and sample records: latency percentiles, throughput in
the workload's unit, memory, phases, and for token models TTFT, TPOT, decode tokens/s and MBU."""

from __future__ import annotations

import statistics

from ..engine.machine import mbu_bandwidth, measure_bandwidth
from ..llm.footprint import nbytes
from ..plugin.batch import BatchResult
from ..plugin.roles import TokenModel, WeightStreaming
from ..report.results import SampleRecord, workload_unit
from ..report.stats import spread


def percentiles(values: list[float]) -> dict[str, float]:
    vals = sorted(v for v in values if v is not None)
    if not vals:
        return {}

    def pct(p: float) -> float:
        k = (len(vals) - 1) * p / 100
        lo, hi = int(k), min(int(k) + 1, len(vals) - 1)
        return vals[lo] + (vals[hi] - vals[lo]) * (k - lo)

    return {
        "mean": statistics.fmean(vals),
        "p50": pct(50),
        "p90": pct(90),
        "p99": pct(99),
        "min": vals[0],
        "max": vals[-1],
    }



def summarize(ctx, results: list[BatchResult], records: list[SampleRecord], mem, warmup_s, compiled,
              conditions: dict | None = None) -> dict:
    """A case's figures: latency, throughput in the workload's unit, memory, phases; and for token
    models the token figures (TTFT, TPOT, decode tokens/s) and, where the model says what a step
    reads, MBU.  ``conditions`` (:meth:`Contention.judge`) is kept as ``contention``; MBU's
    denominator is the highest of the reference and its bandwidth probes, and MBU is at most 1."""
    peak, peak_increase = mem.peak, mem.peak - mem.start
    total_s = sum(r.latency_s for r in results)
    units = sum(r.units for r in records)
    inst = ctx.instance
    summary = {
        "unit": workload_unit(ctx.workload),
        "units": units,
        "throughput_per_s": units / total_s if total_s else None,
        "latency_s": percentiles([r.latency_s for r in records]),
        "total_s": total_s,
        "peak_memory_bytes": peak,
        "peak_memory_increase_bytes": peak_increase,
        "model_bytes": sum(nbytes(p) for p in inst.module.parameters()),
        "phase_s": phase_totals(results),
        "compile_s": (warmup_s[0] - warmup_s[-1] if len(warmup_s) > 1 else warmup_s[0]) if compiled and warmup_s else 0.0,
        "repeats": repeat_spread(results, records, ctx.config.repeat),
        "ttft_s": None,
        "tpot_s": None,
        "output_tokens": None,
        "output_tokens_per_s": None,
        "decode_tokens_per_s": None,
        "decode_steps": None,
        "decode_step_s": None,
        "mbu": None,
        "mbu_p50": None,
        "bytes_per_decode_step": None,
        "mbu_bandwidth": None,
        "contention": conditions,
    }
    if getattr(inst.module, "genaccel_checkpoint_bytes_read", None) is not None:  # a rank's shard of a checkpoint
        summary["checkpoint_bytes_read"] = inst.module.genaccel_checkpoint_bytes_read
    if ctx.has(TokenModel):
        summary.update(_token_figures(ctx, results, records, total_s, conditions))
    return summary


def _token_figures(ctx, results: list[BatchResult], records: list[SampleRecord], total_s: float,
                   conditions: dict | None) -> dict:
    """A token model's figures: TTFT, TPOT, output and decode tokens/s and, where the model says what a
    decode step reads, bytes per step and MBU."""
    inst = ctx.instance
    summary: dict = {}
    decode_s = sum(r.decode_s for r in results)
    steps = sum(r.decode_steps for r in results)
    out_tokens = sum(r.output_tokens or 0 for r in records)
    summary.update(
        ttft_s=percentiles([r.ttft_s for r in records]),
        tpot_s=percentiles([r.tpot_s for r in records]),
        output_tokens=out_tokens,
        output_tokens_per_s=out_tokens / total_s if total_s else None,
        decode_steps=steps,
    )
    speculative = any("speculative" in r.extra for r in results)  # a step is a cycle: no bytes-per-token model
    if decode_s > 0 and steps and ctx.has(WeightStreaming) and not speculative:
        kv_tokens = sum(r.kv_tokens_read for r in results)
        passes = sum(r.decode_steps * r.weight_passes for r in results)
        own = results[0]  # a reference engine's own weight format, else the module's
        weight_bytes = own.weight_bytes_per_step or inst.weight_bytes_per_step()
        read = passes * weight_bytes + kv_tokens * (own.kv_bytes_per_token or inst.kv_bytes_per_token())
        probes = ((conditions or {}).get("probe_before_bytes_per_s"), (conditions or {}).get("probe_after_bytes_per_s"))
        summary["mbu_bandwidth"] = mbu_bandwidth(measure_bandwidth(ctx.device), probes)
        bandwidth = summary["mbu_bandwidth"]["bytes_per_s"]
        step_s = percentiles([t for r in results for t in r.step_s]) or {"mean": decode_s / steps}
        summary["decode_tokens_per_s"] = sum(max((r.output_tokens or 0) - 1, 0) for r in records) / decode_s
        summary["decode_step_s"] = step_s
        summary["bytes_per_decode_step"] = read / steps
        summary["mbu"] = _capped(summary, "mbu", read / decode_s / bandwidth)  # total bytes over total decode time
        if "p50" in step_s:  # the typical step, robust to stalls from other tenants of the machine
            summary["mbu_p50"] = _capped(summary, "mbu_p50", read / steps / step_s["p50"] / bandwidth)
    return summary


def _capped(summary: dict, key: str, mbu: float) -> float:
    """MBU is at most 1: a higher figure (a model read from caches, a probe below the machine's best)
    is kept as ``<key>_uncapped``."""
    if mbu > 1.0:
        summary[f"{key}_uncapped"] = mbu
    return min(mbu, 1.0)


def repeat_spread(results: list[BatchResult], records: list[SampleRecord], repeat: int) -> dict:
    """Throughput (units/s) of each repetition of the timed batches, with mean, sd and 95% interval."""
    n = len(results) // repeat
    per = []
    for r in range(repeat):
        total = sum(x.latency_s for x in results[r * n:(r + 1) * n])
        per.append(sum(s.units for s in records if s.repeat == r) / total if total else None)
    return {"throughput_per_s": spread(per)}


def phase_totals(results) -> dict[str, float]:
    """Seconds per phase (image encode, prefill, decode, image decode, ...) over the case's batches."""
    totals: dict[str, float] = {}
    for r in results:
        for name, seconds in r.phases.items():
            totals[name] = totals.get(name, 0.0) + seconds
    return totals


def speculative_summary(batches: list[dict]) -> dict:
    """Acceptance and time shares of self-speculative decoding over a case's batches."""
    drafted = sum(b["drafted"] for b in batches)
    accepted = sum(b["accepted"] for b in batches)
    cycles = sum(b["cycles"] for b in batches)
    spent = sum(b["draft_s"] + b["verify_s"] for b in batches)
    return {
        "exit_layer": batches[0]["exit_layer"],
        "draft_len": batches[0]["draft_len"],
        "acceptance_rate": accepted / drafted if drafted else None,
        "accepted_per_cycle": accepted / cycles if cycles else None,
        "tokens_per_cycle": (accepted + cycles) / cycles if cycles else None,
        "draft_share": sum(b["draft_s"] for b in batches) / spent if spent else None,
        "verify_share": sum(b["verify_s"] for b in batches) / spent if spent else None,
        "cycles": cycles,
        "batches": batches,
    }
