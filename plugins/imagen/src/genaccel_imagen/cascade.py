"""The cascade's guided loop (what the ``cfg`` decoders run for imagen/t-i): the prompt encoded once,
then each stage denoised in its own phase with its own scheduler and steps, as diffusers' pipelines
do it — stage I (``IFPipeline``) from noise, stage II (``IFSuperResolutionPipeline``) beside the
noise-augmented, upscaled stage-I image, stage III (``StableDiffusionUpscalePipeline``) over latents
beside the noise-augmented low-resolution image, then its VAE decode."""

from __future__ import annotations

import inspect

import attrs
import torch
import torch.nn.functional as F
from genaccel.api import BatchResult, StepClock, make_scheduler, phase, scheduler_name, synced_now

from .presets import STAGE_NAMES


@attrs.frozen(kw_only=True)
class Stage:
    """One stage of the cascade: ``kind`` base, sr or upscaler; its UNet and scheduler config; the upscaler's
    own text encoder, tokenizer and VAE; the output side in pixels."""

    kind: str
    unet: object
    scheduler_config: dict
    size: int
    noise_level: int = 0
    noising_config: dict | None = None
    tokenizer: object = None
    text_encoder: object = None
    vae: object = None


@attrs.frozen(kw_only=True)
class Settings:
    scheduler: str | None
    steps: tuple
    guidance_scale: float
    stages: int


def stage_scheduler(name: str, config: dict):
    """A stage's scheduler of kind ``name``.  IF's UNets predict a learned variance beside the noise, which only
    the schedulers with a ``variance_type`` (DDPM, DPM-Solver) use; the others get a fixed variance in their
    config, so that ``IFPipeline`` and our loop both drop the predicted one."""
    scheduler = make_scheduler(name, config)
    if "variance_type" not in inspect.signature(type(scheduler).__init__).parameters and "variance_type" in config:
        scheduler = make_scheduler(name, {**config, "variance_type": "fixed_small"})
    return scheduler


def default_scheduler(config: dict) -> str:
    """A stage's own scheduler (IF's stages: DDPM; the x4 upscaler: DDIM), used unless ``--scheduler`` names one."""
    return scheduler_name(config, "ddpm")


def step_kwargs(scheduler, generators) -> dict:
    """What diffusers' pipelines pass to ``scheduler.step`` (``eta`` 0 for DDIM, the generators)."""
    params = inspect.signature(scheduler.step).parameters
    return {**({"eta": 0.0} if "eta" in params else {}), **({"generator": generators} if "generator" in params else {})}


@attrs.define
class _Guide:
    """Classifier-free guidance of a stage's UNet: the conditional and unconditional rows batched (2B) or in
    two forwards; a learned variance (the channels past ``split``) kept from the conditional prediction."""

    scale: float
    sequential: bool

    @property
    def guided(self) -> bool:
        return self.scale > 1.0  # as diffusers' pipelines: no unconditional pass at scale <= 1

    def __call__(self, unet, x, cond: tuple, uncond: tuple, split: int):
        if not self.guided:
            return unet(x, *cond)
        if self.sequential:
            u, c = unet(x, *uncond), unet(x, *cond)
        else:
            both = [torch.cat([a, b]) if a is not None else None for a, b in zip(uncond, cond)]
            u, c = unet(torch.cat([x, x]), *both).chunk(2)
        if split and c.shape[1] == 2 * split:
            (u, _), (c, var) = u.split(split, dim=1), c.split(split, dim=1)
            return torch.cat([u + self.scale * (c - u), var], dim=1)
        return u + self.scale * (c - u)


def _noise(shape, gens, inst, dtype=None):
    from diffusers.utils.torch_utils import randn_tensor

    return randn_tensor(shape, generator=gens, device=torch.device(inst.device), dtype=dtype or inst.dtype)


def _base(inst, index, stage, scheduler, guide, text, gens, clock, image):
    """Stage I: a 3-channel image denoised from noise."""
    bsz = len(gens)
    x = _noise((bsz, 3, stage.size, stage.size), gens, inst) * scheduler.init_noise_sigma
    learned = scheduler.config.get("variance_type") in ("learned", "learned_range")
    extra = step_kwargs(scheduler, gens)
    for t in scheduler.timesteps:
        def unet(inp, emb, t=t):
            return inst.unet_forward(index, scheduler.scale_model_input(inp, t), t, emb)
        noise = guide(unet, x, (text[0],), (text[1],), 3)
        x = scheduler.step(noise if learned else noise[:, :3], t, x, **extra, return_dict=False)[0]
        clock.mark()
    return x


def _super_resolution(inst, index, stage, scheduler, guide, text, gens, clock, image):
    """Stage II: denoised beside the previous image, upscaled and noise-augmented (the level its class label)."""
    bsz = len(gens)
    image = inst.check_input(stage, image, index)
    x = _noise((bsz, 3, stage.size, stage.size), gens, inst) * scheduler.init_noise_sigma
    up = F.interpolate(image, (stage.size, stage.size), mode="bilinear", align_corners=True)
    level = torch.tensor([stage.noise_level] * bsz, device=inst.device)
    up = make_scheduler("ddpm", stage.noising_config).add_noise(up, _noise(up.shape, gens, inst, up.dtype),
                                                                 timesteps=level)
    learned = scheduler.config.get("variance_type") in ("learned", "learned_range")
    extra = step_kwargs(scheduler, gens)
    for t in scheduler.timesteps:
        def unet(inp, emb, labels, t=t):
            low = up if inp.shape[0] == bsz else torch.cat([up, up])
            return inst.unet_forward(index, scheduler.scale_model_input(torch.cat([inp, low], 1), t), t, emb, labels)
        noise = guide(unet, x, (text[0], level), (text[1], level), 3)
        x = scheduler.step(noise if learned else noise[:, :3], t, x, **extra, return_dict=False)[0]
        clock.mark()
    return x


def _upscaler(inst, index, stage, scheduler, guide, text, gens, clock, image):
    """Stage III, the x4 latent upscaler: its own prompt encoding, latents beside the noised low-resolution
    image, then its VAE decode."""
    bsz = len(gens)
    image = inst.check_input(stage, image, index)
    prompts = text[2]
    cond = inst.encode_upscaler_prompt(stage, prompts)
    uncond = inst.encode_upscaler_prompt(stage, [""] * bsz) if guide.guided else None
    level = torch.tensor([stage.noise_level], dtype=torch.long, device=inst.device)
    low = make_scheduler("ddpm", stage.noising_config).add_noise(image.to(inst.dtype), _noise(image.shape, gens, inst),
                                                                  level)
    level = level.expand(bsz)
    x = _noise((bsz, stage.vae.config.latent_channels, *image.shape[2:]), gens, inst) * scheduler.init_noise_sigma
    extra = step_kwargs(scheduler, gens)
    for t in scheduler.timesteps:
        def unet(inp, emb, labels, t=t):
            lows = low if inp.shape[0] == bsz else torch.cat([low, low])
            return inst.unet_forward(index, torch.cat([scheduler.scale_model_input(inp, t), lows], 1), t, emb, labels)
        noise = guide(unet, x, (cond, level), (uncond, level), 0)
        x = scheduler.step(noise, t, x, **extra, return_dict=False)[0]
        clock.mark()
    return inst.vae_decode(stage, x)


STAGE_LOOPS = {"base": _base, "sr": _super_resolution, "upscaler": _upscaler}


@torch.no_grad()
def run_cascade(inst, batch, s: Settings, *, sequential: bool, out_dir) -> BatchResult:
    """One batch through the cascade's first ``s.stages`` stages; each stage's images saved."""
    dev, bsz = inst.device, len(batch)
    guide = _Guide(scale=s.guidance_scale, sequential=sequential)
    prompts = [sample.prompt for sample in batch]
    inst.executor.new_batch()
    phases, step_s, images = {}, [], []
    t0 = synced_now(dev)
    with phase("text encoder"):
        cond = inst.encode_prompt(prompts).to(inst.dtype)
        uncond = inst.encode_prompt([""] * bsz).to(inst.dtype) if guide.guided else None
    phases["text encoder"] = synced_now(dev) - t0
    image = None
    for index in range(s.stages):
        stage, name = inst.stages[index], STAGE_NAMES[index]
        gens = [torch.Generator().manual_seed(sample.seed + 7919 * index) for sample in batch]
        t_start = synced_now(dev)
        with phase(name):
            scheduler = stage_scheduler(s.scheduler or default_scheduler(stage.scheduler_config), stage.scheduler_config)
            scheduler.set_timesteps(s.steps[index], device=dev)
            if hasattr(scheduler, "set_begin_index"):
                scheduler.set_begin_index(0)
            clock = StepClock(dev)
            clock.start()
            image = STAGE_LOOPS[stage.kind](inst, index, stage, scheduler, guide, (cond, uncond, prompts), gens, clock,
                                            image)
            times = clock.seconds()
            step_s += [b - a for a, b in zip([0.0, *times], times)]
        images.append((image / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).float().cpu())
        phases[name] = synced_now(dev) - t_start
    return cascade_result(inst, batch, images, phases, synced_now(dev) - t0, out_dir, step_s=step_s,
                          weight_passes=2 if guide.guided and sequential else 1,
                          extra={"denoise": {**attrs.asdict(s), "batched": not sequential, "guided": guide.guided}})


def cascade_result(inst, batch, images, phases, latency, out_dir, *, step_s, steps=None, weight_passes=1, extra=None):
    """A cascade's batch result: every stage's images saved, the last stage's kept as the media."""
    files = inst.save_outputs(batch, images, out_dir)
    steps = len(step_s) if steps is None else steps
    records = [{"id": sample.id, "input_tokens": sample.input_tokens, "output_tokens": 0, "latency_s": latency,
                "ttft_s": None, "tpot_s": None, "steps": steps, "units": 1, "phases": dict(phases), **f}
               for sample, f in zip(batch, files)]
    prefill = phases.get("text encoder", 0.0)
    return BatchResult(records=records, outputs=[[] for _ in batch], latency_s=latency, prefill_s=prefill,
                       decode_s=latency - prefill, decode_steps=steps, weight_passes=weight_passes, step_s=step_s,
                       phases=phases, extra={**(extra or {}), "media": images[-1], "stages": images})
