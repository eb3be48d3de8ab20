"""genaccel plugin: Code Llama code completion (workload ``llama/t-t``).

Registration is light: the workload's code (torch, transformers) is imported on first build.
"""

from __future__ import annotations

from genaccel.api import (
    ALLOW_MISSING_WEIGHTS,
    CODE_COMPLETION_ROLES,
    WorkloadSpec,
    workload_hook,
)

from .presets import PRESETS

genaccel_register_workloads = workload_hook(
    WorkloadSpec(
        name="llama/t-t",
        description="Code Llama code completion: code prompt in, code out (HumanEval lengths)",
        build="genaccel_llama.workload:build",
        presets=tuple(PRESETS),
        default_preset="small",
        default_decoder="greedy",
        roles=CODE_COMPLETION_ROLES,
        unit="token",
        options=(ALLOW_MISSING_WEIGHTS,),
    )
)
