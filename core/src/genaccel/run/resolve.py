"""A run resolved once: its workload, decoder, optimization stack, checked options and device, from a
:class:`~genaccel.run.config.RunConfig` and the registry.  The command line resolves every run (a
bench: every case) before any work; :func:`genaccel.run.prepare.prepare` takes the record."""

from __future__ import annotations

import attrs

from ..errors import GenaccelError, unknown_name
from ..plugin.registry import Registry
from ..plugin.specs import DecoderSpec, Stack, WorkloadSpec, check_device_name, device_type
from .config import RunConfig


@attrs.frozen(kw_only=True)
class ResolvedRun:
    """One run, every name looked up and every option checked: what ``prepare`` builds."""

    config: RunConfig  # its options parsed and checked
    workload: WorkloadSpec
    decoder: DecoderSpec
    stack: Stack

    def with_config(self, **changes) -> ResolvedRun:
        """The same run with other values that names do not depend on (dtype, samples, seed ...)."""
        return attrs.evolve(self, config=attrs.evolve(self.config, **changes))


def resolve(registry: Registry, config: RunConfig, *, strict: bool = True, device: bool = True) -> ResolvedRun:
    """Look up ``config``'s workload, decoder and optimizations, check its options and preset, order
    its stack (``strict``: an optimization the workload cannot take is an error, else a recorded
    skip) and, with ``device``, check that its device is usable here."""
    spec = registry.workload(config.workload)
    if config.preset and config.checkpoint:
        raise GenaccelError("give --preset or --checkpoint, not both")
    if config.preset and config.preset not in spec.presets:
        raise unknown_name(f"preset of {spec.name}", config.preset, spec.presets)
    decoder = registry.check_decoder(spec, config.decoder or spec.default_decoder)
    options = registry.check_run_options(config.options, spec, decoder.name, config.optimizations)
    stack = registry.resolve_stack(spec, config.optimizations, config.device, strict=strict)
    if device:
        check_device(config.device)
    return ResolvedRun(config=attrs.evolve(config, options=options), workload=spec, decoder=decoder, stack=stack)


def check_device(device: str) -> None:
    """A device name this machine can run: a visible CUDA device, or the CPU."""
    check_device_name(device)  # cpu or cuda: the kinds whose work genaccel can time
    if device_type(device) == "cuda":
        import torch  # only for a CUDA device: resolving a CPU run (and `--help`) stays free of torch

        if not torch.cuda.is_available():
            raise GenaccelError(f"--device {device} was asked for but no CUDA device is visible; use --device cpu")
        index = torch.device(device).index
        if index is not None and index >= torch.cuda.device_count():
            raise GenaccelError(f"--device {device}: only {torch.cuda.device_count()} CUDA devices are visible "
                                f"(cuda:0..cuda:{torch.cuda.device_count() - 1})")
