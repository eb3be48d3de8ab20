"""Run one case: build a workload, apply a stack, decode warm samples, measure."""

from __future__ import annotations

import gc
import math
import os
import sys
import time
import traceback
from collections.abc import Callable

import attrs
import torch

from . import distributed
from .config import RunConfig
from .errors import GenaccelError, first_line, out_of_memory, unknown_name
from .hf import _nbytes
from .measure import Contention, PeakMemory, mbu_bandwidth, measure_bandwidth, percentiles, probe_bandwidth
from .registry import NotApplied, Registry, Skip, Stack, WorkloadSpec, check_device_name, device_type
from .results import BatchResult, CaseResult, SampleRecord, case_label, workload_unit
from .roles import Role, TokenModel, WeightStreaming, check_roles


@attrs.define(kw_only=True)
class RunContext:
    """What optimizations and decoders see."""

    config: RunConfig
    workload: WorkloadSpec
    instance: object
    stack: Stack
    decoder: object = None
    max_seq_len: int = 0
    notes: dict = attrs.field(factory=dict)
    batches: list = attrs.field(factory=list)  # the run's batches, once made
    rank: int = attrs.field(factory=lambda: int(os.environ.get("RANK", "0")))
    world_size: int = attrs.field(factory=lambda: int(os.environ.get("WORLD_SIZE", "1")))

    def has(self, role: type[Role]) -> bool:
        """Whether the workload declares ``role`` (``ctx.has(MediaCodec)``)."""
        return role in self.workload.roles

    def calibration_batch(self) -> list:
        """A real batch for optimizations that measure the model before changing it."""
        return (self.batches or make_batches(self))[0]

    @property
    def device(self) -> str:
        return self.config.device

    @property
    def seed(self) -> int:
        return self.config.seed


def _status(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def check_device(device: str) -> None:
    check_device_name(device)
    if device_type(device) == "cuda":
        if not torch.cuda.is_available():
            raise GenaccelError(f"--device {device} was asked for but no CUDA device is visible; use --device cpu")
        index = torch.device(device).index
        if index is not None and index >= torch.cuda.device_count():
            raise GenaccelError(f"--device {device}: only {torch.cuda.device_count()} CUDA devices are visible "
                                f"(cuda:0..cuda:{torch.cuda.device_count() - 1})")
    elif device_type(device) != "cpu":
        try:
            torch.empty(0, device=device)
        except (RuntimeError, ValueError) as e:
            raise GenaccelError(f"--device {device} is not usable here ({e}); use --device cpu or cuda") from None


def prepare(registry: Registry, config: RunConfig, *, strict: bool = True, apply: bool = True) -> RunContext:
    """Validate names, build the workload instance and (unless ``apply`` is False) apply the stack."""
    spec = registry.workload(config.workload)
    if config.preset and config.checkpoint:
        raise GenaccelError("give --preset or --checkpoint, not both")
    if config.preset and config.preset not in spec.presets:
        raise unknown_name(f"preset of {spec.name}", config.preset, spec.presets)
    decoder_spec = registry.check_decoder(spec, config.decoder or spec.default_decoder)
    config = attrs.evolve(config, options=registry.check_run_options(config.options, spec, decoder_spec.name,
                                                                     config.optimizations))
    stack = registry.resolve_stack(spec, config.optimizations, config.device, strict=strict)
    check_device(config.device)
    torch.manual_seed(config.seed)
    instance = spec.build(config.build_options())
    check_roles(spec.name, spec.roles, instance)
    ctx = RunContext(config=config, workload=spec, instance=instance, stack=stack)
    ctx.decoder = decoder_spec.factory(**{o.name: config.options.get(o.name, o.default) for o in decoder_spec.options})
    if apply:
        apply_stack(ctx)
    return ctx


def apply_stack(ctx: RunContext) -> None:
    """Apply the stack in order; a step that raises :class:`NotApplied` (and any that needs it)
    moves to the stack's skips with its reason."""
    applied, skipped = [], list(ctx.stack.skipped)
    for opt in ctx.stack.applied:
        needed = sorted(opt.needs & {s.name for s in skipped})
        if needed:
            skipped.append(Skip(name=opt.name, reason=f"depends on skipped {', '.join(needed)}"))
            continue
        try:
            ctx.notes[opt.name] = opt.apply(ctx)
        except NotApplied as e:
            skipped.append(Skip(name=opt.name, reason=str(e)))
            continue
        applied.append(opt)
    ctx.stack = Stack(applied=tuple(applied), skipped=tuple(skipped))


def _fit_cache(config: RunConfig, batches: list[list]) -> int:
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
    ctx.max_seq_len = _fit_cache(config, batches) if ctx.has(TokenModel) else 0  # a KV cache to size
    return batches


def run_case(
    registry: Registry,
    config: RunConfig,
    *,
    strict: bool = True,
    progress: bool = True,
    samples: list | None = None,
    on_batch: Callable[[BatchResult], None] | None = None,
) -> CaseResult:
    """Measure one case."""
    from . import accuracy

    t_build = time.perf_counter()
    ctx = prepare(registry, config, strict=strict, apply=False)
    build_s = time.perf_counter() - t_build
    inst = ctx.instance
    batches = ctx.batches = make_batches(ctx, samples)
    reference = None
    lossy_dtype = config.dtype != "float32"  # against float32: the accuracy impact is the dtype's and the stack's
    if not ctx.stack.lossless or lossy_dtype:
        _status("  reference outputs of the unoptimized model" + (" in float32" if lossy_dtype else "")
                + " (for the accuracy impact)")
        reference = accuracy.reference(registry, config, ctx, strict=strict)
    t_apply = time.perf_counter()
    apply_stack(ctx)
    apply_s = time.perf_counter() - t_apply

    rss_before_warmup = PeakMemory.rss()
    warmup_s = []
    warm_batch = batches[0]
    if ctx.has(TokenModel):  # a short warm-up: at most 32 new tokens
        warm_batch = [attrs.evolve(s, max_new_tokens=min(s.max_new_tokens, 32)) for s in warm_batch]
    for _ in range(config.warmup):
        t0 = time.perf_counter()
        ctx.decoder.run(ctx, warm_batch)
        warmup_s.append(time.perf_counter() - t0)

    results: list[BatchResult] = []
    label = case_label(ctx.stack.names, decoder=config.decoder, skipped=ctx.stack.skipped, tp=config.tp)
    bar = _progress(len(batches), label, progress and ctx.rank == 0)  # only rank 0 shows progress
    probe_before = probe_bandwidth(config.device)  # the machine's bandwidth right before and after the case
    rss_start = rss_before_warmup if config.device == "cpu" else None
    group = distributed.local_world_size() if config.device == "cpu" else 1  # a CPU group's other ranks are its own load
    contention = Contention(threads=torch.get_num_threads() * group, pids=distributed.GROUP_PIDS)
    with contention, PeakMemory(config.device, start=rss_start) as mem:
        for batch in batches:
            res = ctx.decoder.run(ctx, batch)
            results.append(res)
            if on_batch:
                on_batch(res)
            bar.update(1)
    bar.close()
    conditions = contention.judge((probe_before, probe_bandwidth(config.device)))

    unit = workload_unit(ctx.workload)
    records = [SampleRecord.from_decoder(rec, unit=unit, batch=b, output=out)
               for b, res in enumerate(results) for rec, out in zip(res.records, res.outputs)]
    compiled = any(s.stage in ("compile", "graph") for s in ctx.stack.applied)
    case = CaseResult(
        label=label,
        workload=config.workload,
        unit=unit,
        preset=config.preset if not config.checkpoint else None,
        checkpoint=config.checkpoint,
        decoder=config.decoder or ctx.workload.default_decoder,
        optimizations=list(ctx.stack.names),
        skipped_optimizations=[attrs.asdict(s) for s in ctx.stack.skipped],
        optimization_notes=ctx.notes,
        lossless=ctx.stack.lossless and not lossy_dtype,
        device=config.device,
        dtype=config.dtype,
        batch_size=config.batch_size,
        seq_len=config.seq_len,
        max_seq_len=ctx.max_seq_len,
        model=inst.describe(),
        config=config.to_dict(),
        build_s=build_s,
        apply_s=apply_s,
        warmup_s=warmup_s,
        samples=records,
        summary=summarize(ctx, results, records, mem, warmup_s, compiled, conditions),
    )
    if ctx.world_size > 1:  # tensor parallel: the group's figures are rank 0's, each rank's own beside them
        from .distributed import rank_summary

        case.summary.update(rank_summary(case.summary))
    if reference is not None:
        case.accuracy = accuracy.assess(ctx, reference, results, [r.to_dict() for r in records])
    spec_stats = [r.extra["speculative"] for r in results if "speculative" in r.extra]
    if spec_stats:
        case.speculative = speculative_summary(spec_stats)
    del ctx, inst
    release_memory()
    return case


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
        "model_bytes": sum(_nbytes(p) for p in inst.module.parameters()),
        "phase_s": _phase_totals(results),
        "compile_s": (warmup_s[0] - warmup_s[-1] if len(warmup_s) > 1 else warmup_s[0]) if compiled and warmup_s else 0.0,
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
    if not ctx.has(TokenModel):
        return summary
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


def _phase_totals(results) -> dict[str, float]:
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


def release_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    torch._dynamo.reset()


def run_case_safe(registry: Registry, config: RunConfig, **kwargs) -> CaseResult:
    """Like ``run_case``, but a failure (out of memory included) becomes a recorded case."""
    try:
        return run_case(registry, config, **kwargs)
    except GenaccelError as e:
        status, reason = "failed", str(e)
    except Exception as e:  # noqa: BLE001 - a bench must go on and keep what it has
        if out_of_memory(e):  # CUDA's OutOfMemoryError and the CPU allocator's RuntimeError alike
            status, reason = "oom", f"out of memory: {first_line(e)}"
        else:
            status, reason = "failed", f"{type(e).__name__}: {e}"
            _status(traceback.format_exc())
    release_memory()
    _status(f"  {config.label}: {status}: {reason}")
    unit = workload_unit(registry.workloads.get(config.workload))
    return CaseResult.not_run(config, status, reason, unit=unit)


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=f"  {desc}", unit="batch", disable=not enabled or None, file=sys.stderr, leave=False)
