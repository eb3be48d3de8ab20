"""Run one case: build a workload, apply a stack, decode warm samples, measure."""

from __future__ import annotations

import gc
import math
import sys
import time
import traceback
from collections.abc import Callable

import attrs
import torch
from attrs import validators as v

from .decoding import BatchResult
from .errors import GenaccelError, unknown_name
from .hf import _nbytes
from .measure import PeakMemory, measure_bandwidth, percentiles
from .registry import Registry, Stack, WorkloadSpec
from .roles import TokenModel, WeightStreaming, check_roles
from .workload import BuildOptions

DEVICES = ("cpu", "cuda")
DTYPES = ("float32", "bfloat16", "float16")


def _positive_or_none(instance, attribute, value):
    if value is not None and value < 1:
        raise ValueError(f"{attribute.name} must be >= 1, got {value}")


@attrs.frozen(kw_only=True)
class RunConfig:
    """Everything that defines one measured case."""

    workload: str
    preset: str | None = None
    checkpoint: str | None = None
    data: str | None = None
    decoder: str | None = None
    optimizations: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    batch_size: int = attrs.field(default=1, validator=v.ge(1))
    samples: int = attrs.field(default=4, validator=v.ge(1))
    max_new_tokens: int | None = attrs.field(default=None, validator=_positive_or_none)
    seq_len: int | None = attrs.field(default=None, validator=_positive_or_none)
    device: str = attrs.field(default="cpu", validator=v.in_(DEVICES))
    dtype: str = attrs.field(default="float32", validator=v.in_(DTYPES))
    seed: int = 0
    warmup: int = attrs.field(default=1, validator=v.ge(0))
    cache_len: int | None = attrs.field(default=None, validator=_positive_or_none)
    temperature: float = attrs.field(default=0.6, validator=v.gt(0))
    top_p: float = attrs.field(default=0.9, validator=[v.gt(0), v.le(1)])
    exit_layer: int | None = attrs.field(default=None, validator=_positive_or_none)  # self-speculative E
    draft_len: int | None = attrs.field(default=None, validator=_positive_or_none)  # self-speculative k
    workload_options: dict = attrs.field(factory=dict, converter=dict, hash=False)  # e.g. image_tokenizer
    out_dir: str | None = None  # where the workload writes what it makes (images, audio)

    @property
    def label(self) -> str:
        stack = "+".join(self.optimizations) if self.optimizations else "baseline"
        if self.decoder == "hf-generate":
            stack = "transformers generate"
        return stack

    @property
    def options(self) -> dict:
        """Every workload and decoder option of the run by name."""
        return {"temperature": self.temperature, "top_p": self.top_p, "exit_layer": self.exit_layer,
                "draft_len": self.draft_len, **self.workload_options}

    def build_options(self) -> BuildOptions:
        return BuildOptions(
            preset=self.preset, checkpoint=self.checkpoint, device=self.device, dtype=self.dtype,
            seed=self.seed, data=self.data, options=self.workload_options, out_dir=self.out_dir,
        )

    def to_dict(self) -> dict:
        return attrs.asdict(self)


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

    def has(self, role) -> bool:
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
    if device == "cuda" and not torch.cuda.is_available():
        raise GenaccelError("--device cuda was asked for but no CUDA device is visible; use --device cpu")


def prepare(registry: Registry, config: RunConfig, *, strict: bool = True, apply: bool = True) -> RunContext:
    """Validate names, build the workload instance and (unless ``apply`` is False) apply the stack."""
    spec = registry.workload(config.workload)
    if config.preset and config.checkpoint:
        raise GenaccelError("give --preset or --checkpoint, not both")
    if config.preset and config.preset not in spec.presets:
        raise unknown_name(f"preset of {spec.name}", config.preset, spec.presets)
    spec.check_options(config.workload_options)
    decoder_spec = registry.check_decoder(spec, config.decoder or spec.default_decoder)
    stack = registry.resolve_stack(spec, config.optimizations, config.device, strict=strict)
    check_device(config.device)
    torch.manual_seed(config.seed)
    instance = spec.build(config.build_options())
    check_roles(spec.name, spec.roles, instance)
    ctx = RunContext(config=config, workload=spec, instance=instance, stack=stack)
    ctx.decoder = decoder_spec.factory(temperature=config.temperature, top_p=config.top_p)
    if apply:
        apply_stack(ctx)
    return ctx


def apply_stack(ctx: RunContext) -> None:
    for opt in ctx.stack.applied:
        ctx.notes[opt.name] = opt.apply(ctx)


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
) -> dict:
    """Measure one case and return its JSON-ready record."""
    from . import accuracy

    t_build = time.perf_counter()
    ctx = prepare(registry, config, strict=strict, apply=False)
    build_s = time.perf_counter() - t_build
    inst = ctx.instance
    batches = ctx.batches = make_batches(ctx, samples)
    reference = None
    if not ctx.stack.lossless:
        _status("  reference outputs of the unoptimized model (for the accuracy impact)")
        generative = accuracy.supported(ctx)
        reference = (accuracy.capture if generative else accuracy.capture_outputs)(ctx, batches)
    t_apply = time.perf_counter()
    apply_stack(ctx)
    apply_s = time.perf_counter() - t_apply
    bs = config.batch_size

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
    bar = _progress(len(batches), config.label, progress)
    with PeakMemory(config.device, start=rss_before_warmup if config.device == "cpu" else None) as mem:
        for batch in batches:
            res = ctx.decoder.run(ctx, batch)
            results.append(res)
            if on_batch:
                on_batch(res)
            bar.update(1)
    bar.close()

    records = []
    for b, res in enumerate(results):
        for rec, out in zip(res.records, res.outputs):
            records.append({**rec, "batch": b, "output_ids": out})
    compiled = any(s.stage in ("compile", "graph") for s in ctx.stack.applied)
    label = config.label if config.decoder == "hf-generate" else "+".join(ctx.stack.names) or "baseline"
    if ctx.stack.skipped:
        label += " (skipped " + ",".join(s.name for s in ctx.stack.skipped) + ")"
    case = {
        "label": label,
        "status": "ok",
        "workload": config.workload,
        "preset": config.preset if not config.checkpoint else None,
        "checkpoint": config.checkpoint,
        "decoder": config.decoder or ctx.workload.default_decoder,
        "optimizations": list(ctx.stack.names),
        "skipped_optimizations": [attrs.asdict(s) for s in ctx.stack.skipped],
        "optimization_notes": ctx.notes,
        "lossless": ctx.stack.lossless,
        "device": config.device,
        "dtype": config.dtype,
        "batch_size": bs,
        "seq_len": config.seq_len,
        "max_seq_len": ctx.max_seq_len,
        "model": inst.describe(),
        "config": config.to_dict(),
        "build_s": build_s,
        "apply_s": apply_s,  # applying the stack (autoquant's calibration and timing included)
        "warmup_s": warmup_s,
        "samples": records,
        "summary": summarize(ctx, results, records, mem, warmup_s, compiled),
    }
    if reference is not None:
        case["accuracy"] = (accuracy.impact(ctx, reference, records) if generative
                            else accuracy.output_impact(reference, records))
    spec_stats = [r.extra["speculative"] for r in results if "speculative" in r.extra]
    if spec_stats:
        case["speculative"] = speculative_summary(spec_stats)
    del ctx, inst
    release_memory()
    return case


def summarize(ctx, results, records, mem, warmup_s, compiled) -> dict:
    peak, peak_increase = mem.peak, mem.peak - mem.start
    total_s = sum(r.latency_s for r in results)
    decode_s = sum(r.decode_s for r in results)
    steps = sum(r.decode_steps for r in results)
    out_tokens = sum(r["output_tokens"] for r in records)
    inst = ctx.instance
    summary = {
        "latency_s": percentiles([r["latency_s"] for r in records]),
        "ttft_s": percentiles([r["ttft_s"] for r in records]),
        "tpot_s": percentiles([r["tpot_s"] for r in records]),
        "total_s": total_s,
        "output_tokens": out_tokens,
        "output_tokens_per_s": out_tokens / total_s if total_s else None,
        "decode_tokens_per_s": None,
        "decode_steps": steps,
        "decode_step_s": None,
        "peak_memory_bytes": peak,
        "peak_memory_increase_bytes": peak_increase,
        "model_bytes": sum(_nbytes(p) for p in inst.module.parameters()),
        "mbu": None,
        "bytes_per_decode_step": None,
        "phase_s": _phase_totals(results),
        "compile_s": (warmup_s[0] - warmup_s[-1] if len(warmup_s) > 1 else warmup_s[0]) if compiled and warmup_s else 0.0,
    }
    speculative = any("speculative" in r.extra for r in results)  # a step is a cycle: no bytes-per-token model
    if decode_s > 0 and steps and ctx.has(WeightStreaming) and not speculative:
        kv_tokens = sum(r.kv_tokens_read for r in results)
        passes = sum(r.decode_steps * r.weight_passes for r in results)
        read = passes * inst.weight_bytes_per_step() + kv_tokens * inst.kv_bytes_per_token()
        bandwidth = measure_bandwidth(ctx.device)
        step_s = percentiles([t for r in results for t in r.step_s]) or {"mean": decode_s / steps}
        summary["decode_tokens_per_s"] = sum(max(r["output_tokens"] - 1, 0) for r in records) / decode_s
        summary["decode_step_s"] = step_s
        summary["bytes_per_decode_step"] = read / steps
        summary["mbu"] = read / decode_s / bandwidth  # total bytes over total decode time
        if "p50" in step_s:  # the typical step, robust to stalls from other tenants of the machine
            summary["mbu_p50"] = read / steps / step_s["p50"] / bandwidth
    return summary


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


def run_case_safe(registry: Registry, config: RunConfig, **kwargs) -> dict:
    """Like ``run_case``, but a failure (out of memory included) becomes a recorded case."""
    try:
        return run_case(registry, config, **kwargs)
    except torch.OutOfMemoryError as e:
        status, reason = "oom", f"out of memory: {str(e).splitlines()[0]}"
    except GenaccelError as e:
        status, reason = "failed", str(e)
    except Exception as e:  # noqa: BLE001 - a bench must go on and keep what it has
        status, reason = "failed", f"{type(e).__name__}: {e}"
        _status(traceback.format_exc())
    release_memory()
    _status(f"  {config.label}: {status}: {reason}")
    return {
        "label": config.label,
        "status": status,
        "error": reason,
        "workload": config.workload,
        "preset": config.preset,
        "checkpoint": config.checkpoint,
        "decoder": config.decoder,
        "optimizations": list(config.optimizations),
        "skipped_optimizations": [],
        "device": config.device,
        "dtype": config.dtype,
        "batch_size": config.batch_size,
        "seq_len": config.seq_len,
        "config": config.to_dict(),
        "samples": [],
        "summary": {},
    }


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=f"  {desc}", unit="batch", disable=not enabled or None, file=sys.stderr, leave=False)
