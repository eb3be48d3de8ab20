"""Where inference time goes: phases, operator categories and overhead (the paper's Fig. 4).

- Phases come from the code that knows them: the decode loop marks ``prefill`` and ``decode``,
  plugins mark their own (``with phase("vocoder"): ...``).
- Categories come from module annotations first (the innermost annotated module wins, so a q/k/v
  projection is Linear, not Attention), then from op names.  A plugin can set a module's category
  with :func:`annotate`.
- On CPU the remainder of a phase's wall time outside top-level aten ops is framework overhead, so
  the shares add up to the wall time.  On CUDA the remainder of the phase window with no kernel
  running is Idle.
"""

from __future__ import annotations

import contextlib
import re

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, register_flop_formula, sdpa_flop_count

CATEGORIES = ("Linear", "Attention", "Norm", "Activation", "Embedding", "KV-cache update", "KV-cache reorder",
              "Conv", "Communication", "Other")
OVERHEAD = {"cpu": "Overhead", "cuda": "Idle"}
COLORS = {"Linear": "#3b75af", "Attention": "#d1603d", "Norm": "#6aa84f", "Activation": "#a64d79",
          "Embedding": "#e6b422", "KV-cache update": "#45818e", "KV-cache reorder": "#134f5c", "Conv": "#8e7cc3",
          "Communication": "#cc4125", "Other": "#c9c9c9", "Overhead": "#7f7f7f", "Idle": "#7f7f7f"}
PHASE_PREFIX, MODULE_PREFIX = "genaccel.phase::", "genaccel.module::"

_active = False
_flops = None  # (FlopCounterMode, totals per phase) while counting


_phases: list[str] = []  # the phases entered and not yet left, innermost last


def current_phase() -> str | None:
    return _phases[-1] if _phases else None


@contextlib.contextmanager
def phase(name: str):
    """Mark a phase of inference (costs little unless a profile or a FLOP count is being taken)."""
    if torch.compiler.is_compiling():
        yield
        return
    _phases.append(name)
    try:
        with _phase(name):
            yield
    finally:
        _phases.pop()


@contextlib.contextmanager
def _phase(name: str):
    if _flops is not None and not torch.compiler.is_compiling():
        counter, totals = _flops
        before = counter.get_total_flops()
        try:
            yield
        finally:
            totals[name] = totals.get(name, 0) + counter.get_total_flops() - before
        return
    if not _active or torch.compiler.is_compiling():
        yield
        return
    with torch.profiler.record_function(PHASE_PREFIX + name):
        yield


_formulas_registered = False


def _register_missing_formulas() -> None:
    """FlopCounterMode counts nothing for CPU flash attention; give it the SDPA formula."""
    global _formulas_registered
    if _formulas_registered:
        return
    op = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if op is not None:

        @register_flop_formula(op)
        def _cpu_flash_flop(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
            return sdpa_flop_count(query_shape, key_shape, value_shape)

    _formulas_registered = True


class PhaseFlops(dict):
    """FLOPs by phase; ``total``: every FLOP counted in the block, inside a phase or not (phases may nest, so the
    phases' sum is not the total), set when the block ends."""

    total: int = 0


@contextlib.contextmanager
def count_flops():
    """Count FLOPs per phase and in all (eager code only: compiled graphs are opaque to the counter)."""
    global _flops
    _register_missing_formulas()
    totals = PhaseFlops()
    with FlopCounterMode(display=False) as counter:
        _flops = (counter, totals)
        try:
            yield totals
        finally:
            _flops = None
            totals.total = counter.get_total_flops()


def region(category: str, name: str = ""):
    """A category annotation for code that is not a module (KV-cache update, reorder)."""
    if torch.compiler.is_compiling() or not _active:  # never a guard on the flag inside compiled code
        return contextlib.nullcontext()
    return torch.profiler.record_function(f"{MODULE_PREFIX}{category}::{name}")


def annotate(module: nn.Module, category: str) -> nn.Module:
    """Give a module (and what runs inside it, unless a child says otherwise) a category."""
    if category not in CATEGORIES:
        raise ValueError(f"category {category!r}: expected one of {', '.join(CATEGORIES)}")
    module._genaccel_category = category
    return module


def module_category(module: nn.Module) -> str | None:
    explicit = getattr(module, "_genaccel_category", None)
    if explicit:
        return explicit
    name = type(module).__name__.lower()
    if isinstance(module, nn.Linear) or name.endswith("linear"):
        return "Linear"
    if isinstance(module, nn.Embedding) or "embedding" in name and "rotary" not in name:
        return "Embedding"
    if "norm" in name:
        return "Norm"
    if "attention" in name or name.endswith("attn"):
        return "Attention"
    if isinstance(module, (nn.SiLU, nn.GELU, nn.ReLU, nn.Tanh, nn.Sigmoid)) or "activation" in name or name.endswith("act"):
        return "Activation"
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
        return "Conv"
    return None


_OP_RULES = [
    (r"c10d|all_reduce|allreduce|all_gather|allgather|nccl|gloo|wait_tensor", "Communication"),
    (r"linear|addmm|^aten::mm$|matmul|_weight_int|int4|int8|qlinear", "Linear"),
    (r"scaled_dot_product|softmax|bmm|baddbmm|flash|attention", "Attention"),
    (r"norm|rsqrt", "Norm"),
    (r"silu|gelu|relu|sigmoid|tanh", "Activation"),
    (r"embedding", "Embedding"),
    (r"index_copy|index_put", "KV-cache update"),
    (r"conv", "Conv"),
]


def op_category(name: str) -> str:
    for pattern, category in _OP_RULES:
        if re.search(pattern, name):
            return category
    return "Other"


class _ModuleAnnotator:
    """Forward hooks that open a record_function range per categorized module."""

    def __init__(self, root: nn.Module):
        self.handles, self.open = [], {}
        for qualname, module in root.named_modules():
            category = module_category(module)
            if category:
                self.handles.append(module.register_forward_pre_hook(self._pre(f"{MODULE_PREFIX}{category}::{qualname}")))
                self.handles.append(module.register_forward_hook(self._post()))

    def _pre(self, label):
        def hook(module, args):
            rf = torch.profiler.record_function(label)
            rf.__enter__()
            self.open.setdefault(id(module), []).append(rf)

        return hook

    def _post(self):
        def hook(module, args, output):
            stack = self.open.get(id(module))
            if stack:
                stack.pop().__exit__(None, None, None)

        return hook

    def remove(self):
        for h in self.handles:
            h.remove()


@contextlib.contextmanager
def annotations(root: nn.Module):
    """Turn on phase and module annotations for the duration of a profile."""
    global _active
    annotator = _ModuleAnnotator(root)
    _active = True
    try:
        yield
    finally:
        _active = False
        annotator.remove()


def breakdown(events, device: str) -> dict:
    """Per phase: wall time and microseconds per category, plus Overhead (CPU) or Idle (CUDA).

    One sweep over the events of the thread that ran the phases, in start order, keeping the open
    phase and the stack of open module annotations: each top-level op (not nested in another op)
    goes to the innermost annotation around it, or to its name's category.
    """
    device = torch.device(device).type  # "cuda:1" is a CUDA device
    phases = [e for e in events if e.name.startswith(PHASE_PREFIX)]
    if not phases:
        return {}
    thread = phases[0].thread
    cpu_type = torch.autograd.DeviceType.CPU
    cpu = sorted((e for e in events if e.thread == thread and e.device_type == cpu_type),
                 key=lambda e: (e.time_range.start, -e.time_range.end))
    device_events = sorted((e.time_range.start, e.time_range.end) for e in events if e.device_type != cpu_type)
    out: dict[str, dict] = {}
    rest = OVERHEAD[device]
    current, entry, annots, op_end = None, None, [], -1.0
    for e in cpu:
        start, end = e.time_range.start, e.time_range.end
        if current is not None and start >= current.time_range.end:
            current = None
        if e.name.startswith(PHASE_PREFIX):
            current, annots, op_end = e, [], -1.0
            name = e.name[len(PHASE_PREFIX):]
            entry = out.setdefault(name, {"wall_us": 0.0, "calls": 0, "categories": dict.fromkeys(CATEGORIES, 0.0), rest: 0.0})
            entry["wall_us"] += end - start
            entry["calls"] += 1
            if device == "cuda":
                entry[rest] += (end - start) - _union(device_events, start, end)
            continue
        if current is None:
            continue
        while annots and annots[-1].time_range.end <= start:
            annots.pop()
        if e.name.startswith(MODULE_PREFIX):
            annots.append(e)
            continue
        if e.name.startswith(("genaccel.", "ProfilerStep")) or start < op_end:
            continue  # nested in an earlier top-level op
        op_end = end
        category = annots[-1].name[len(MODULE_PREFIX):].split("::")[0] if annots else op_category(e.name)
        if device == "cuda":
            entry["categories"][category] += sum(k.duration for k in (e.kernels or []))
        else:
            entry["categories"][category] += end - start
    if device != "cuda":
        for entry in out.values():
            entry[rest] = entry["wall_us"] - sum(entry["categories"].values())
    return out


def _union(intervals, lo, hi) -> float:
    total, cur_s, cur_e = 0.0, None, None
    for s, e in intervals:
        s, e = max(s, lo), min(e, hi)
        if e <= s:
            continue
        if cur_e is None or s > cur_e:
            if cur_e is not None:
                total += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_e is not None:
        total += cur_e - cur_s
    return total


def shares(entry: dict, device: str) -> dict[str, float]:
    """A phase's categories (and the remainder) as fractions of its wall time."""
    wall = entry["wall_us"] or 1.0
    rest = OVERHEAD[torch.device(device).type]
    values = {**entry["categories"], rest: entry.get(rest, 0.0)}
    return {k: v / wall for k, v in values.items()}
