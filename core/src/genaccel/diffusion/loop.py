"""The denoising loop of text-to-image and text-to-video diffusion, over a ``diffusers`` scheduler.

:func:`denoise` is what the guidance decoders (``cfg``, ``cfg-sequential``) run for a workload
playing the :class:`~genaccel.plugin.roles.Denoiser` role.  It follows ``diffusers``' pipelines step
by step, so that the same components, seed, scheduler and steps give the same images:

1. encode the prompts (phase ``text encoder``); with guidance also the unconditional embeddings
   (the empty prompt's, or zeros for a model that asks for them, as SDXL);
2. latents drawn from one CPU generator per sample (seeded by the sample), times the
   scheduler's initial noise sigma;
3. per step (phase ``denoise``, each step timed): ``scale_model_input`` → the denoiser's forward
   → classifier-free guidance ``u + s·(c − u)`` → ``scheduler.step``.  Batched guidance runs the
   unconditional and conditional rows in one forward of batch 2B, sequential guidance in two.
   What the denoiser predicts (noise, or v for SD 2.x's v-prediction models) is the scheduler
   config's ``prediction_type``, which every scheduler made here keeps;
4. decode the latents (phase ``vae decode``) and save the outputs (untimed).

The loop takes plain :class:`Settings` (:func:`settings` makes them from a run's options and the
workload's ``denoise_defaults``), so it runs inside a run or outside one (characterization) alike.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import attrs
import diffusers
import torch
from diffusers.utils.torch_utils import randn_tensor

from ..engine.clock import StepClock, synced_now
from ..engine.profiling import phase
from ..errors import GenaccelError
from ..plugin.batch import BatchResult
from .conditioning import join

SCHEDULERS = {
    "ddim": "DDIMScheduler",
    "pndm": "PNDMScheduler",
    "dpm-solver": "DPMSolverMultistepScheduler",
    "euler": "EulerDiscreteScheduler",
    "ddpm": "DDPMScheduler",  # ancestral sampling, the schedule DeepFloyd IF's stages ship with
}


@attrs.frozen(kw_only=True)
class Settings:
    scheduler: str
    num_inference_steps: int
    guidance_scale: float


def settings(options: dict, defaults: dict) -> Settings:
    """The scheduler, steps and guidance scale of a run's ``options`` (the workload's ``defaults``
    where not given), checked."""

    def get(name, kind):
        value = options.get(name)
        if value is None:
            return defaults[name]
        try:
            return kind(value)
        except (TypeError, ValueError):
            raise GenaccelError(f"--{name.replace('_', '-')} {value!r} is not a{'n int' if kind is int else ' number'}") from None

    name = get("scheduler", str)
    if name not in SCHEDULERS:
        raise GenaccelError(f"--scheduler {name!r} is not known; choose one of {', '.join(SCHEDULERS)}")
    steps = get("num_inference_steps", int)
    if steps < 1:
        raise GenaccelError(f"--num-inference-steps must be at least 1, got {steps}")
    scale = get("guidance_scale", float)
    if scale < 0:
        raise GenaccelError(f"--guidance-scale must be >= 0, got {scale}")
    return Settings(scheduler=name, num_inference_steps=steps, guidance_scale=scale)


def make_scheduler(name: str, config: dict):
    """A ``diffusers`` scheduler of kind ``name`` (``ddim``, ``pndm``, ``dpm-solver``, ``euler``,
    ``ddpm``) from a scheduler config (the training betas and the prediction type carry over, as with
    ``Scheduler.from_config``; PNDM without a word on PRK steps skips them)."""
    if name not in SCHEDULERS:
        raise GenaccelError(f"--scheduler {name!r} is not known; choose one of {', '.join(SCHEDULERS)}")
    overrides = {}
    if name == "pndm" and "skip_prk_steps" not in config:  # PLMS only, as every Stable Diffusion pipeline
        overrides["skip_prk_steps"] = True
    scheduler = getattr(diffusers, SCHEDULERS[name]).from_config(config, **overrides)
    wanted = config.get("prediction_type", "epsilon")
    if scheduler.config.get("prediction_type", "epsilon") != wanted:
        raise GenaccelError(f"--scheduler {name} cannot take the model's prediction_type {wanted!r}; "
                            "choose another scheduler")
    return scheduler


def _step_kwargs(scheduler, generators) -> dict:
    """What ``diffusers``' pipelines pass to ``scheduler.step`` (``eta`` 0 for DDIM, the generators)."""
    params = inspect.signature(scheduler.step).parameters
    kwargs = {}
    if "eta" in params:
        kwargs["eta"] = 0.0
    if "generator" in params:
        kwargs["generator"] = generators
    return kwargs


def _guided_noise(inst, scheduler, latents, t, text: tuple, scale: float):
    """The denoiser's noise prediction at step ``t``; ``text``: (cond, uncond, both), the unconditional
    embeddings None without guidance, ``both`` (uncond and cond in one batch) None for sequential
    guidance; guided ``u + s·(c − u)``."""
    cond, uncond, both = text
    if uncond is None:
        return inst.predict_noise(scheduler.scale_model_input(latents, t), t, cond)
    if both is None:
        x = scheduler.scale_model_input(latents, t)
        u, c = inst.predict_noise(x, t, uncond), inst.predict_noise(x, t, cond)
    else:
        x = scheduler.scale_model_input(torch.cat([latents] * 2), t)
        u, c = inst.predict_noise(x, t, both).chunk(2)
    return u + scale * (c - u)


@torch.no_grad()
def denoise(inst, batch: Sequence, s: Settings, *, sequential: bool, device: str, out_dir=None) -> BatchResult:
    """Text → latents → media for one batch of prompt samples (``genaccel.diffusion.prompts.PromptSample``)
    through the Denoiser ``inst``, with classifier-free guidance when the scale is > 1; the media are
    saved to ``out_dir`` when given."""
    guided = s.guidance_scale > 1.0  # as diffusers' pipelines: no unconditional pass at scale <= 1
    generators = [torch.Generator().manual_seed(sample.seed) for sample in batch]
    inst.executor.new_batch()
    t0 = synced_now(device)
    with phase("text encoder"):
        cond = inst.encode_prompt([sample.prompt for sample in batch])
        uncond = inst.encode_negative(len(batch)) if guided else None
    t1 = synced_now(device)
    scheduler = make_scheduler(s.scheduler, inst.scheduler_config)
    scheduler.set_timesteps(s.num_inference_steps, device=device)
    latents = randn_tensor(inst.latent_shape(len(batch)), generator=generators, device=torch.device(device),
                           dtype=inst.dtype) * scheduler.init_noise_sigma
    extra = _step_kwargs(scheduler, generators)
    text = (cond, uncond, join(uncond, cond) if guided and not sequential else None)
    clock = StepClock(device)
    clock.start()
    for i, t in enumerate(scheduler.timesteps):
        inst.begin_step(i)  # a step cache numbers the steps
        with phase("denoise"):
            noise = _guided_noise(inst, scheduler, latents, t, text, s.guidance_scale)
            latents = scheduler.step(noise, t, latents, **extra, return_dict=False)[0]
        clock.mark()
    step_times = clock.seconds()  # denoiser passes: PNDM's PLMS takes one more than the steps asked for
    t2 = synced_now(device)
    with phase("vae decode"):
        media = inst.decode_latents(latents)
    t3 = synced_now(device)
    phases = {"text encoder": t1 - t0, "denoise": t2 - t1, "vae decode": t3 - t2}
    result = _result(inst, batch, media, phases, step_times, out_dir)
    result.weight_passes = 2 if guided and sequential else 1
    result.extra["denoise"] = {**attrs.asdict(s), "batched": not sequential, "guided": guided}
    return result


def _result(inst, batch, media, phases: dict, step_times: list[float], out_dir) -> BatchResult:
    """A batch's result: per-sample records (the media saved to ``out_dir``), phases, each step's time."""
    files = inst.save_outputs(batch, media, out_dir)
    latency, steps = sum(phases.values()), len(step_times)
    records = [{"id": sample.id, "prompt": sample.prompt, "seed": sample.seed, "input_tokens": sample.input_tokens,
                "output_tokens": 0, "latency_s": latency, "ttft_s": None, "tpot_s": None, "steps": steps, "units": inst.units_per_sample, "phases": dict(phases),
                **extra_fields} for sample, extra_fields in zip(batch, files)]
    return BatchResult(records=records, outputs=[[] for _ in batch], latency_s=latency, prefill_s=phases["text encoder"],
                       decode_s=phases["denoise"], decode_steps=steps,
                       step_s=[b - a for a, b in zip([0.0, *step_times], step_times)], phases=phases,
                       extra={"media": media})
