"""Peak memory of a diffusion denoising step over image sizes, eager attention against SDPA, beside the
study's analytical model of the attention similarity matrix (Golden et al. 2024, Section V-B;
:mod:`genaccel.diffusion.similarity`).

The peak is that of the allocator during each UNet forward, above what was allocated when it began (the
weights, the latents and the text are there before): on CUDA ``torch.cuda.max_memory_allocated``; on CPU,
which keeps no allocator statistics, the allocations and frees ``torch.profiler`` records with
``profile_memory=True``, summed in time order within the forward and their running maximum taken.  The
process's RSS would not do on CPU: the C allocator keeps freed pages, so RSS hardly moves for a small step.
"""

from __future__ import annotations

import contextlib
import sys

import attrs
import torch

from ..diffusion.attention import attention_profile
from ..diffusion.similarity import similarity_model
from ..engine.clock import is_cuda, synchronize
from .case import release_memory
from .config import RunConfig
from .prepare import prepare
from .resolve import resolve

_MARK = "genaccel.forward-peak"
_MEMORY = "[memory]"  # the profiler's name for an allocation (bytes > 0) or a free (bytes < 0)


def _cuda_hooks(device: str, peaks: list):
    dev, starts = torch.device(device), []

    def pre(module, args):
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(dev)
        starts.append(torch.cuda.memory_allocated(dev))

    def post(module, args, output):
        synchronize(device)
        peaks.append(torch.cuda.max_memory_allocated(dev) - starts.pop())

    return pre, post


def _marker_hooks():
    """A profiler range around each forward (the window its allocations are summed in)."""
    open_ = []

    def pre(module, args):
        open_.append(torch.profiler.record_function(_MARK))
        open_[-1].__enter__()

    def post(module, args, output):
        open_.pop().__exit__(None, None, None)

    return pre, post


def _cpu_peaks(events) -> list[int]:
    """Per marked window, the running maximum of the CPU allocations less frees inside it."""
    cpu = (torch.autograd.DeviceType.CPU, torch.autograd.DeviceType.MKLDNN)
    memory = sorted((e.start_ns(), e.nbytes()) for e in events if e.name() == _MEMORY and e.device_type() in cpu)
    peaks = []
    for lo, hi in sorted((e.start_ns(), e.end_ns()) for e in events if e.name() == _MARK):
        live = peak = 0
        for t, nbytes in memory:
            if lo <= t <= hi:
                live += nbytes
                peak = max(peak, live)
        peaks.append(peak)
    return peaks


@contextlib.contextmanager
def forward_peaks(module: torch.nn.Module, device: str):
    """While the block runs, the peak bytes allocated during each forward of ``module`` above what was
    allocated when it began; yields the list, filled by the block's end."""
    peaks: list[int] = []
    cuda = is_cuda(device)
    pre, post = _cuda_hooks(device, peaks) if cuda else _marker_hooks()
    handles = [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
    try:
        if cuda:
            yield peaks
            return
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as prof:
            yield peaks
        peaks += _cpu_peaks(prof.profiler.kineto_results.events())
    finally:
        for h in handles:
            h.remove()


def step_peak(registry, base: RunConfig, *, attention: str, options: dict) -> tuple[int, object]:
    """The peak bytes of one denoising step (the highest of a one-step inference's UNet forwards: PNDM's
    first step takes two) of the workload ``base`` names, and the built instance."""
    config = attrs.evolve(base, samples=1, optimizations=("sdpa",) if attention == "sdpa" else (), options=options)
    inst = prepare(resolve(registry, config)).instance
    with forward_peaks(inst.unet, inst.device) as peaks:
        attention_profile(inst, steps=1)
    return max(peaks), inst


def memory_sweep(registry, base: RunConfig, image_sizes=()) -> list[dict]:
    """Per image size (the workload's own where none are given): the measured peak of a denoising step with
    eager attention and with SDPA, and the model's similarity matrices at that size (the largest one and
    their sum over the UNet's forward)."""
    rows = []
    for size in image_sizes or (None,):
        print(f"{base.workload}: step peak memory" + (f" at {size}px" if size else ""), file=sys.stderr, flush=True)
        options = {"image_size": size} if size else {}
        sdpa_peak, inst = step_peak(registry, base, attention="sdpa", options=options)
        del inst
        release_memory()
        eager_peak, inst = step_peak(registry, base, attention="eager", options=options)
        model = similarity_model(inst)
        rows.append({"image_size": inst.image_size, "latent_shape": list(inst.latent_shape(1)),
                     "eager_peak_bytes": eager_peak, "sdpa_peak_bytes": sdpa_peak,
                     "model_largest_bytes": model["largest_bytes"], "model_total_bytes": model["total_bytes"],
                     "model_calls": model["calls"]})
        del inst
        release_memory()
    return rows
