"""Preparing a resolved run: build the workload instance (its roles checked) and the decoder, and apply
the optimization stack in stage order."""

from __future__ import annotations

import torch

from ..plugin.role import check_roles
from ..plugin.specs import BuildOptions, NotApplied, Skip, Stack
from .config import RunConfig
from .context import RunContext
from .resolve import ResolvedRun


def build_options(config: RunConfig) -> BuildOptions:
    """What the workload's ``build`` receives of a run."""
    return BuildOptions(preset=config.preset, checkpoint=config.checkpoint, device=config.device, dtype=config.dtype,
                        seed=config.seed, data=config.data, options=config.options, out_dir=config.out_dir, tp=config.tp)


def prepare(run: ResolvedRun, *, apply: bool = True) -> RunContext:
    """Build the workload instance and the decoder; with ``apply``, apply the stack too."""
    config = run.config
    torch.manual_seed(config.seed)
    instance = run.workload.build(build_options(config))
    check_roles(run.workload.name, run.workload.roles, instance)
    ctx = RunContext(config=config, workload=run.workload, instance=instance, stack=run.stack, decoder_spec=run.decoder)
    ctx.decoder = run.decoder.factory(**{o.name: config.options.get(o.name, o.default) for o in run.decoder.options})
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


