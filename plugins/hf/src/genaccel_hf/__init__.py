"""genaccel plugin: your own Hugging Face decoder-only LM (workload ``hf/t-t``).

``--checkpoint DIR`` (or a Hub id in the local Hugging Face cache) takes a folder of any architecture
in the core's table (:data:`genaccel.api.ARCHITECTURES`); presets are random models of the same
architectures (``--arch``).  Registration is light: the workload's code (torch, transformers) is
imported on first build.
"""

from __future__ import annotations

from genaccel.api import (
    ALLOW_MISSING_WEIGHTS,
    ARCHITECTURES,
    CODE_COMPLETION_ROLES,
    Option,
    WorkloadSpec,
    workload_hook,
)

from .presets import DEFAULT_ARCH, PRESETS

ARCH = Option(name="arch", type=str, choices=tuple(ARCHITECTURES),
              help=f"a preset's architecture (default {DEFAULT_ARCH}); a checkpoint's comes from its config.json")


genaccel_register_workloads = workload_hook(
    WorkloadSpec(
        name="hf/t-t",
        description="your Hugging Face decoder-only LM (--checkpoint DIR or Hub id): code prompt in, code out",
        build="genaccel_hf.workload:build",
        presets=tuple(PRESETS),
        default_preset="small",
        default_decoder="greedy",
        roles=CODE_COMPLETION_ROLES,
        unit="token",
        options=(ARCH, ALLOW_MISSING_WEIGHTS),
    )
)
