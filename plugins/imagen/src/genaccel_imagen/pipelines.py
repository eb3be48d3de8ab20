"""The reference of imagen/t-i: diffusers' own pipelines stage by stage (``IFPipeline``,
``IFSuperResolutionPipeline``, ``StableDiffusionUpscalePipeline``) on the workload's weights, seeds
and settings, with their default attention (SDPA); each pipeline encodes the prompt itself, as a user
chaining them does."""

from __future__ import annotations

import torch
from genaccel.api import BatchResult, make_scheduler, phase, synced_now

from .cascade import Settings, cascade_result, default_scheduler, stage_scheduler
from .presets import STAGE_NAMES


def make_pipelines(inst, scheduler: str | None) -> list:
    """One diffusers pipeline per stage of ``inst``'s cascade."""
    from diffusers import IFPipeline, IFSuperResolutionPipeline, StableDiffusionUpscalePipeline

    pipes = []
    for stage in inst.stages:
        sched = stage_scheduler(scheduler or default_scheduler(stage.scheduler_config), stage.scheduler_config)
        common = dict(safety_checker=None, feature_extractor=None, watermarker=None, requires_safety_checker=False)
        if stage.kind == "base":
            pipe = IFPipeline(tokenizer=inst.tokenizer, text_encoder=inst.text_encoder, unet=stage.unet,
                              scheduler=sched, **common)
        elif stage.kind == "sr":
            pipe = IFSuperResolutionPipeline(tokenizer=inst.tokenizer, text_encoder=inst.text_encoder, unet=stage.unet,
                                             scheduler=sched, image_noising_scheduler=make_scheduler(
                                                 "ddpm", stage.noising_config), **common)
        else:
            pipe = StableDiffusionUpscalePipeline(vae=stage.vae, text_encoder=stage.text_encoder,
                                                  tokenizer=stage.tokenizer, unet=stage.unet, scheduler=sched,
                                                  low_res_scheduler=make_scheduler("ddpm", stage.noising_config),
                                                  max_noise_level=350)
        pipe.set_progress_bar_config(disable=True)
        pipes.append(pipe)
    return pipes


@torch.no_grad()
def run_pipelines(inst, batch, s: Settings, out_dir) -> BatchResult:
    """One batch through the pipelines of the first ``s.stages`` stages."""
    if inst.attention != "sdpa":
        inst.set_attention("sdpa")  # diffusers' and transformers' defaults
    prompts = [sample.prompt for sample in batch]
    phases, images, image = {}, [], None  # each pipeline encodes its prompt inside its stage
    t0 = synced_now(inst.device)
    for index, pipe in enumerate(make_pipelines(inst, s.scheduler)[:s.stages]):
        stage = inst.stages[index]
        gens = [torch.Generator().manual_seed(sample.seed + 7919 * index) for sample in batch]
        args = dict(num_inference_steps=s.steps[index], guidance_scale=s.guidance_scale, generator=gens,
                    output_type="pt")
        t_start = synced_now(inst.device)
        with phase(STAGE_NAMES[index]):
            if stage.kind == "base":
                image = pipe(prompts, height=stage.size, width=stage.size, clean_caption=False, **args).images
                shown = image / 2 + 0.5
            elif stage.kind == "sr":
                image = pipe(prompts, image=image, height=stage.size, width=stage.size, noise_level=stage.noise_level,
                             clean_caption=False, **args).images
                shown = image / 2 + 0.5
            else:
                shown = pipe(prompts, image=image, noise_level=stage.noise_level, **args).images
        phases[STAGE_NAMES[index]] = synced_now(inst.device) - t_start
        images.append(shown.clamp(0, 1).permute(0, 2, 3, 1).float().cpu())
    return cascade_result(inst, batch, images, phases, synced_now(inst.device) - t0, out_dir, step_s=[],
                          steps=sum(s.steps[:s.stages]))
