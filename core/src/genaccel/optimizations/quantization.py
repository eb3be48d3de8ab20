"""Quantization of linear layers with torchao: uniform configs, and ``autoquant``, a per-layer choice.

``autoquant`` does what torchao's removed AutoQuant did, on today's ``quantize_`` API:

1. calibration: one real batch runs through the workload's own decoder while forward hooks
   record, for every linear layer, the row counts of its inputs and the phase they came from
   (prefill shapes are compute-bound, decode shapes memory-bound) and how often each occurs;
2. timing: for every distinct layer signature (weight shape, bias, dtype) and candidate config,
   copies of the layer are quantized, compiled when the stack compiles, and timed on each
   recorded shape, cycling through enough copies to stream weights from memory as the whole
   model does (a lone small layer would sit in cache and hide what quantization saves); the
   cost is the count-weighted sum;
3. the fastest candidate per layer is applied, and the choices with their timings go to the report.

int4 weight-only on CPU is ours (:mod:`.int4cpu`: group-wise uint4 over genaccel's CPU kernel); it is
an autoquant candidate on CPU too, at the default group size, for the layers it can take.
"""

from __future__ import annotations

import copy
from collections import Counter

import torch
import torchao.quantization as tq
from torch import nn
from torchao.quantization import quantize_

from ..engine.clock import synced_now
from ..engine.executor import StepExecutor
from ..engine.native import cpu_ops
from ..engine.profiling import current_phase
from ..errors import first_line
from ..llm.gemv import cpu_gemv_linears
from ..plugin.builtin import QUANT_CONFIGS as CONFIGS  # name -> (torchao config, kwargs, devices)
from .int4cpu import integer_gemm, quantize_int4_cpu, unsupported

INT4 = "int4-weight-only"


def make_config(name: str, group_size: int | None = None):
    cls, kwargs, _ = CONFIGS[name]
    if group_size is not None and "group_size" in kwargs:
        kwargs = {**kwargs, "group_size": group_size}
    return getattr(tq, cls)(**kwargs)


def _group_size(ctx) -> int:
    size = ctx.config.options.get("int4_group_size")
    return CONFIGS[INT4][1]["group_size"] if size is None else int(size)


def linear_layers(module: nn.Module) -> dict[str, nn.Linear]:
    """Linear layers with plain float weights (not yet quantized), by qualified name.

    An LM head tied to the token embedding is one of them: quantizing it gives the head its own
    weight in the stack's format and leaves the embedding its float table (a lookup reads one row a
    token).  llama.cpp's quantizer also writes a tied model's output weight quantized (in 6 or 8
    bits).  A decode step reads the whole head, a quarter of Llama 3.2 1B's parameters: left in
    float32 it would weigh twice the int4 rest.
    """
    return {
        name: m for name, m in module.named_modules()
        if isinstance(m, nn.Linear) and type(m.weight) in (torch.Tensor, nn.Parameter)
        and m.weight.is_floating_point()
    }


def _quantize(module: nn.Module, names: set[str], config_name: str, group_size: int | None = None) -> dict[str, str]:
    """Quantize the linears ``names`` under ``module``; returns those left in their precision, with why."""
    if config_name == INT4 and next(module.parameters()).device.type == "cpu":
        layers = {n: m for n, m in module.named_modules() if n in names}
        return quantize_int4_cpu(module, layers, group_size or CONFIGS[INT4][1]["group_size"])
    quantize_(module, make_config(config_name, group_size), filter_fn=lambda m, fqn: fqn in names)
    return {}


def uniform(config_name: str):
    def apply(ctx):
        module = ctx.instance.module
        layers = linear_layers(module)
        group_size = _group_size(ctx) if config_name == INT4 else None
        left = _quantize(module, set(layers), config_name, group_size)
        how = f"torchao {CONFIGS[config_name][0]}"
        if group_size and ctx.device == "cpu":
            how = f"int4 groups of {group_size}, " + (
                "dequantized float products" if cpu_ops() is None else "genaccel's CPU int4 kernel"
                + (" (decode) and oneDNN's u8 x s8 GEMM (eager prefill)" if integer_gemm() else ""))
        elif group_size:
            how = f"int4 groups of {group_size}, {how}"
        note = {
            "summary": f"{len(layers) - len(left)} linear layers quantized with {how}"
                       + (f"; {len(left)} left in their precision (shape)" if left else ""),
            "layers": {name: config_name for name in layers if name not in left},
        }
        if left:
            note["left"] = left
        return note

    return apply


# --- autoquant -------------------------------------------------------------------------------------


def calibrate(ctx, layers: dict[str, nn.Linear]) -> dict[str, Counter]:
    """Row counts of each layer's inputs over one real batch: {name: Counter({(phase, rows): n})}."""
    seen: dict[str, Counter] = {name: Counter() for name in layers}
    hooks = [
        layer.register_forward_pre_hook(
            lambda m, args, name=name: seen[name].update([(current_phase() or "forward", args[0].numel() // args[0].shape[-1])])
        )
        for name, layer in layers.items()
    ]
    try:
        with torch.no_grad():
            ctx.decoder.run(ctx, ctx.calibration_batch())
    finally:
        for h in hooks:
            h.remove()
    return seen


def _shapes(counts: Counter) -> list[tuple[str, int, int]]:
    """(phase, rows, count) to time: few-row shapes exactly, larger ones merged per phase at their mean."""
    small = [(ph, rows, n) for (ph, rows), n in counts.items() if rows <= 16]
    large: dict[str, list[int]] = {}
    for (ph, rows), n in counts.items():
        if rows > 16:
            large.setdefault(ph, []).extend([rows] * n)
    merged = [(ph, round(sum(r) / len(r)), len(r)) for ph, r in large.items()]
    return sorted(small + merged)


#: Bytes of weight copies a timing cycles through, well past the last-level cache (CPU L3, GPU
#: L2), so a layer is timed streaming its weights from memory as it does inside the whole model.
COLD_BYTES = 128 * 2**20


def _call(module, x):
    return module(x)


def _time(fn, copies, x, device: str, budget_s: float = 0.02) -> float:
    """Seconds per call, cycling through the copies."""
    for m in copies:  # warm-up: compiles once (the copies share one graph) and touches every copy
        fn(m, x)
    reps, elapsed = 0, 0.0
    while reps < 2 or elapsed < budget_s:
        t0 = synced_now(device)
        for m in copies:
            fn(m, x)
        elapsed += synced_now(device) - t0
        reps += len(copies)
    return elapsed / reps


def time_candidate(layer: nn.Linear, candidate: str, shapes, *, compiled: bool, device: str) -> dict:
    """Seconds per call on each shape for one candidate, and the count-weighted total.

    The layer is copied enough times to exceed the caches and the copies are called in turn.
    ``compiled``: the shapes are timed compiled, as the stack's steps run, except the prefill's,
    which runs eager (only the decode steps compile).
    """
    n = max(1, min(64, -(-COLD_BYTES // (layer.weight.numel() * layer.weight.element_size()))))
    copies = nn.Sequential(*[copy.deepcopy(layer) for _ in range(n)])
    if candidate != "none":
        _quantize(copies, {str(i) for i in range(n)}, candidate)
    if compiled and torch.device(device).type == "cpu":  # what the compile step does to linears on CPU
        cpu_gemv_linears(copies)
    fn = _call
    if compiled:  # the copies share one compiled graph
        steps = StepExecutor(device)
        steps.configure(compile="default", fullgraph=False, dynamic=False)

        def fn(module, x):
            return steps.run("linear", _call, module, x)

    per_shape = {}
    total = 0.0
    with torch.no_grad():
        for ph, rows, count in shapes:
            x = torch.randn(rows, layer.in_features, dtype=layer.weight.dtype, device=device)
            seconds = _time(_call if ph == "prefill" else fn, list(copies), x, device)  # prefills run eager
            per_shape[f"{ph}:{rows}"] = seconds
            total += seconds * count
    return {"per_shape_s": per_shape, "weighted_s": total, "copies": n}


def autoquant(ctx):
    module = ctx.instance.module
    layers = linear_layers(module)
    compiled = "compile" in ctx.stack.names
    device = ctx.device
    candidates = ["none"] + [n for n, (_, _, devices) in CONFIGS.items() if device in devices]
    counts = calibrate(ctx, layers)
    decided: dict[tuple, dict] = {}
    choices: dict[str, str] = {}
    unavailable: dict[str, str] = {}
    for name, layer in layers.items():
        shapes = _shapes(counts[name])
        if not shapes:
            continue  # never called: leave it alone
        key = (layer.out_features, layer.in_features, layer.bias is not None, layer.weight.dtype, tuple(shapes))
        if key not in decided:
            timings = {}
            for cand in candidates:
                if cand in unavailable or (cand == INT4 and unsupported(layer, CONFIGS[INT4][1]["group_size"])):
                    continue
                try:
                    timings[cand] = time_candidate(layer, cand, shapes, compiled=compiled, device=device)
                except Exception as e:  # noqa: BLE001 - a config this build/device cannot run is not a candidate
                    unavailable[cand] = f"{type(e).__name__}: {first_line(e)}"
            best = min(timings, key=lambda c: timings[c]["weighted_s"])
            decided[key] = {"choice": best, "weight": [layer.out_features, layer.in_features],
                            "shapes": [list(s) for s in shapes], "timings": timings, "layers": []}
            torch._dynamo.reset()
        decided[key]["layers"].append(name)
        choices[name] = decided[key]["choice"]
    for cand in set(choices.values()) - {"none"}:
        _quantize(module, {n for n, c in choices.items() if c == cand}, cand)
    tally = Counter(choices.values())
    return {
        "summary": "per-layer choice (" + ", ".join(f"{c}: {n}" for c, n in sorted(tally.items())) + ") timed "
                   + ("compiled" if compiled else "eager") + f" on calibrated shapes; candidates {', '.join(candidates)}",
        "layers": choices,
        "decisions": list(decided.values()),
        "unavailable": unavailable,
    }


# The uniform quantizations' apply functions, by name ("int8-weight-only" → int8_weight_only);
# genaccel.builtin.registration registers them.
int8_weight_only, int8_dynamic, int4_weight_only, float8_weight_only = (uniform(name) for name in CONFIGS)
