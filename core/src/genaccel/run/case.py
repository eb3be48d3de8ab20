"""Run one case: prepare a resolved run, take the accuracy reference of a lossy one, apply its stack,
warm up, time its batches under a contention watch, and make the case's record."""

from __future__ import annotations

import gc
import sys
import time
import traceback
from collections.abc import Callable

import attrs
import torch
from tqdm import tqdm

from ..distributed import group
from ..engine.clock import PeakMemory
from ..engine.compile_cache import CacheTally
from ..engine.machine import Contention, probe_bandwidth
from ..errors import GenaccelError, OutputError, disk_fault, first_line, out_of_memory
from ..plugin.batch import BatchResult
from ..plugin.roles import TokenModel
from ..plugin.specs import NotApplied
from ..report.results import CaseResult, SampleRecord, case_label, workload_unit
from . import accuracy
from .context import RunContext, make_batches
from .prepare import apply_stack, prepare
from .resolve import ResolvedRun
from .summary import speculative_summary, summarize


def _status(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_case(run: ResolvedRun, *, progress: bool = True, samples: list | None = None,
             on_batch: Callable[[BatchResult], None] | None = None) -> CaseResult:
    """Measure one case."""
    config = run.config
    t_build = time.perf_counter()
    ctx = prepare(run, apply=False)
    build_s = time.perf_counter() - t_build
    ctx.batches = make_batches(ctx, samples)
    lossy_dtype = config.dtype != "float32"  # against float32: the accuracy impact is the dtype's and the stack's
    # taken in a bench case's first round only: the later rounds decode the same samples with the same weights
    first_round = not config.round
    reference = _reference(run, ctx) if (not ctx.stack.lossless or lossy_dtype) and first_round else None
    with CacheTally() as compile_cache:  # the stack's and warm-up's compiles: a cold or a warm build
        t_apply = time.perf_counter()
        apply_stack(ctx)
        apply_s = time.perf_counter() - t_apply
        rss_before_warmup = PeakMemory.rss()
        warmup_s = _warm_up(ctx)
    label = case_label(ctx.stack.names, decoder=config.decoder, skipped=ctx.stack.skipped, tp=config.tp,
                       round=config.round)
    results, mem, conditions = _timed(ctx, label, progress, rss_before_warmup, on_batch)
    unit, n = workload_unit(ctx.workload), len(ctx.batches)
    records = [SampleRecord.from_decoder(rec, unit=unit, batch=i % n, repeat=i // n, output=out, step_s=res.step_s)
               for i, res in enumerate(results) for rec, out in zip(res.records, res.outputs)]
    compiled = any(s.stage in ("compile", "graph") for s in ctx.stack.applied)
    case = CaseResult(
        label=label, workload=config.workload, unit=unit, preset=config.preset if not config.checkpoint else None,
        checkpoint=config.checkpoint, decoder=config.decoder or ctx.workload.default_decoder,
        optimizations=list(ctx.stack.names), skipped_optimizations=[attrs.asdict(s) for s in ctx.stack.skipped],
        optimization_notes=ctx.notes, lossless=ctx.stack.lossless and not lossy_dtype, device=config.device,
        dtype=config.dtype, batch_size=config.batch_size, seq_len=config.seq_len, max_seq_len=ctx.max_seq_len,
        model=ctx.instance.describe(), config=config.to_dict(), build_s=build_s, apply_s=apply_s, warmup_s=warmup_s,
        samples=records, summary=summarize(ctx, results, records, mem, warmup_s, compiled, conditions),
        round=config.round,
    )
    if compiled:
        case.summary["compile_cache"] = compile_cache.result()
    if ctx.world_size > 1:  # tensor parallel: the group's figures are rank 0's, each rank's own beside them
        case.summary.update(group.rank_summary(case.summary))
    if reference is not None:  # on the first repetition (the others decode the same samples again)
        case.accuracy = accuracy.assess(ctx, reference, results[:n], [r.to_dict() for r in records if r.repeat == 0])
    spec_stats = [r.extra["speculative"] for r in results if "speculative" in r.extra]
    if spec_stats:
        case.speculative = speculative_summary(spec_stats)
    del ctx
    release_memory()
    return case


def _reference(run: ResolvedRun, ctx: RunContext) -> dict:
    """The accuracy reference of a lossy case, taken before its stack is applied: the run's own
    unoptimized model, or for a reduced-precision run its float32 twin (built with the same seed, so
    the run's weights are the twin's, rounded), released again after."""
    lossy_dtype = run.config.dtype != "float32"
    _status("  reference outputs of the unoptimized model" + (" in float32" if lossy_dtype else "")
            + " (for the accuracy impact)")
    if not lossy_dtype:
        return accuracy.reference(ctx)
    rng = torch.get_rng_state()
    twin = prepare(run.with_config(dtype="float32"), apply=False)
    twin.batches, twin.max_seq_len = ctx.batches, ctx.max_seq_len
    ref = accuracy.reference(twin)
    del twin
    release_memory()
    torch.set_rng_state(rng)  # the run draws as it would have without the twin
    return ref


def _warm_up(ctx: RunContext) -> list[float]:
    """The warm-up generations' seconds (a token model's at most 32 new tokens each).  Generation i runs
    the run's batch i (cycling), so that a compiled step meets a second input shape while warming up and
    torch.compile's recompile for dynamic shapes happens here rather than in the first timed batch."""
    seconds = []
    for i in range(ctx.config.warmup):
        warm_batch = ctx.batches[i % len(ctx.batches)]
        if ctx.has(TokenModel):
            warm_batch = [attrs.evolve(s, max_new_tokens=min(s.max_new_tokens, 32)) for s in warm_batch]
        t0 = time.perf_counter()
        ctx.decoder.run(ctx, warm_batch)
        seconds.append(time.perf_counter() - t0)
    return seconds


def _timed(ctx: RunContext, label: str, progress: bool, rss_start: int, on_batch) -> tuple:
    """The timed batches (``repeat`` times over), their peak memory, and the conditions they ran in
    (contention, bandwidth probes)."""
    device = ctx.config.device
    batches = ctx.batches * ctx.config.repeat
    bar = _progress(len(batches), label, progress and ctx.rank == 0)  # only rank 0 shows progress
    probe_before = probe_bandwidth(device)  # the machine's bandwidth right before and after the case
    cpu = device == "cpu"
    ranks = group.local_world_size() if cpu else 1  # a CPU group's other ranks are its own load
    contention = Contention(threads=torch.get_num_threads() * ranks, pids=group.GROUP_PIDS)
    results: list[BatchResult] = []
    with contention, PeakMemory(device, start=rss_start if cpu else None) as mem:
        for batch in batches:
            res = ctx.decoder.run(ctx, batch)
            results.append(res)
            if on_batch:
                on_batch(res)
            bar.update(1)
    bar.close()
    return results, mem, contention.judge((probe_before, probe_bandwidth(device)))


def release_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    torch._dynamo.reset()


def run_case_safe(run: ResolvedRun, **kwargs) -> CaseResult:
    """Like ``run_case``, but a failure (out of memory included) becomes a recorded case, and a decoder
    that cannot take the model (a reference engine raising :class:`NotApplied`) a recorded skip; a file
    that cannot be written (a full disk) is raised, since every case after it would fail the same way."""
    try:
        return run_case(run, **kwargs)
    except OutputError:  # a full or unwritable disk fails every case after it: the run stops with one line
        raise
    except NotApplied as e:
        status, reason = "skipped", str(e)
    except GenaccelError as e:
        status, reason = "failed", str(e)
    except Exception as e:  # noqa: BLE001 - a bench must go on and keep what it has
        if disk_fault(e):
            raise
        if out_of_memory(e):  # CUDA's OutOfMemoryError and the CPU allocator's RuntimeError alike
            status, reason = "oom", f"out of memory: {first_line(e)}"
        else:
            status, reason = "failed", f"{type(e).__name__}: {e}"
            _status(traceback.format_exc())
    release_memory()
    _status(f"  {run.config.label}: {status}: {reason}")
    return CaseResult.not_run(run.config, status, reason, unit=workload_unit(run.workload))


def _progress(total: int, desc: str, enabled: bool):
    return tqdm(total=total, desc=f"  {desc}", unit="batch", disable=not enabled or None, file=sys.stderr, leave=False)
