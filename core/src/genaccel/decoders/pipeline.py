"""The ``diffusers-pipeline`` decoder: diffusers' own pipelines on the workload's components, the
reference of diffusion workloads (role ``PipelineReference``: the workload runs them)."""

from __future__ import annotations

from ..plugin.batch import BatchResult


class DiffusersPipeline:
    def __init__(self, guidance_scale: float | None = None, scheduler: str | None = None,
                 num_inference_steps: int | None = None, **options):
        pass

    def run(self, ctx, batch) -> BatchResult:
        return ctx.instance.pipeline_run(batch, ctx.config.options, ctx.config.out_dir)
