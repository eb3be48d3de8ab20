"""One workload's point on the study's roofline (Golden et al. 2024, Fig. 5; ``genaccel characterize-study``): the
FLOPs of one whole inference of one sample on the baseline stack (counted in eager mode by
:func:`genaccel.engine.profiling.count_flops`), the bytes of its parameters (the study's "required model capacity"),
and the seconds of a warm, uncounted inference; against this machine's roof from the core's cached probes (GEMM peak
in the run's dtype, reference read bandwidth)."""

from __future__ import annotations

import sys

import attrs
import torch

from ..engine.clock import synced_now
from ..engine.machine import device_name, measure_bandwidth, measure_gemm_peak
from ..engine.profiling import count_flops
from ..plugin.registry import Registry
from ..report.roofline import roofline_entry
from .case import release_memory
from .config import RunConfig
from .context import make_batches
from .prepare import prepare
from .resolve import resolve


def machine_roof(device: str, dtype: str) -> dict:
    """The roof: the GEMM peak in ``dtype`` and the read bandwidth of ``device`` (both cached by the core's
    probes), and their ratio, the ridge point in FLOPs per byte."""
    peak, bandwidth = measure_gemm_peak(device, getattr(torch, dtype)), measure_bandwidth(device)
    return {"device": device_name(device), "dtype": dtype, "peak_flops_per_s": peak, "bandwidth_bytes_per_s": bandwidth,
            "ridge_flops_per_byte": peak / bandwidth}


def parameter_bytes(module: torch.nn.Module) -> tuple[int, int]:
    """The parameters of ``module`` (each shared one once) and their bytes."""
    params = list(module.parameters())
    return sum(p.numel() for p in params), sum(p.numel() * p.element_size() for p in params)


def roofline_point(registry: Registry, base: RunConfig) -> dict:
    """The roofline entry (:func:`genaccel.report.roofline.roofline_entry`) of one inference of the workload ``base``
    names (its model, decoder, device, dtype, seed and options; one sample, no optimization): a counted inference,
    which is also the warm-up, then a timed one."""
    config = attrs.evolve(base, samples=1, batch_size=1, optimizations=())
    print(f"{config.workload}: roofline (a counted, then a timed inference)", file=sys.stderr, flush=True)
    ctx = prepare(resolve(registry, config))
    batch = make_batches(ctx)[0]
    with count_flops() as counted:
        ctx.decoder.run(ctx, batch)
    t0 = synced_now(config.device)
    ctx.decoder.run(ctx, batch)
    seconds = synced_now(config.device) - t0
    parameters, nbytes = parameter_bytes(ctx.instance.module)
    del ctx
    release_memory()
    return roofline_entry(config.workload, flops=counted.total, parameters=parameters, parameter_bytes=nbytes,
                          seconds=seconds, machine=machine_roof(config.device, config.dtype))
