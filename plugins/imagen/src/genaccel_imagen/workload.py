"""Imagen's pixel-space cascade from ``diffusers``/``transformers`` parts, as DeepFloyd IF builds it:

- a T5 encoder (``T5EncoderModel``), shared by the base and super-resolution stages;
- stage I: a base UNet (``UNet2DConditionModel``, 3 → 6 channels: noise and learned variance)
  denoising a 64×64 image in pixel space (``IFPipeline``'s loop);
- stage II: a super-resolution UNet (6 → 6 channels) denoising a 256×256 image beside the
  bilinearly upscaled, noise-augmented stage-I image, the augmentation level its class label
  (``IFSuperResolutionPipeline``'s loop);
- stage III: the x4 latent upscaler (``StableDiffusionUpscalePipeline``: its own CLIP text
  encoder, a 7 → 4 channel UNet over latents the size of its input, a VAE decoding ×4).

Each stage is its own phase, with its own scheduler and steps; the outputs of every stage are
saved as PNGs.  :meth:`Imagen.guided_run` is what the ``cfg`` decoders run.
"""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import torch
import torch.nn.functional as F
from genaccel.decoding import BatchResult
from genaccel.denoise import (
    PROMPTS,
    SCHEDULERS,
    PromptSample,
    _step_kwargs,
    clip_style_tokenizer,
    make_scheduler,
    materialize,
    prompt_sample,
    prompt_samples,
    scheduler_name,
)
from genaccel.errors import GenaccelError, cannot_load
from genaccel.executor import StepExecutor
from genaccel.layout import channels_last
from genaccel.measure import StepClock, synced_now
from genaccel.profiling import phase

STAGE_NAMES = ("stage I", "stage II", "stage III")
STAGE_FOLDERS = ("stage_1", "stage_2", "stage_3")

#: DeepFloyd IF's schedulers (diffusers' scripts/convert_if.py): DDPM with learned variance and dynamic thresholding
#: at the 0.95 quantile, clipped to 1.5 in stage I and 1.0 in stage II (IF's own stage_I.py / stage_II.py:
#: dynamic_thresholding_c); stage II's noise augmentation, the same cosine schedule
IF_SCHEDULER = {"_class_name": "DDPMScheduler", "num_train_timesteps": 1000, "beta_schedule": "squaredcos_cap_v2",
                "beta_start": 0.0001, "beta_end": 0.02, "thresholding": True, "dynamic_thresholding_ratio": 0.95,
                "sample_max_value": 1.5, "prediction_type": "epsilon", "variance_type": "learned_range",
                "clip_sample": True}
IF_SR_SCHEDULER = {**IF_SCHEDULER, "sample_max_value": 1.0}
NOISING_SCHEDULER = {"_class_name": "DDPMScheduler", "num_train_timesteps": 1000, "beta_schedule": "squaredcos_cap_v2",
                     "beta_start": 0.0001, "beta_end": 0.02}
#: the x4 upscaler's: DDIM with v-prediction; its low-resolution noise augmentation
UPSCALER_SCHEDULER = {"_class_name": "DDIMScheduler", "num_train_timesteps": 1000, "beta_schedule": "scaled_linear",
                      "beta_start": 0.00085, "beta_end": 0.012, "prediction_type": "v_prediction",
                      "clip_sample": False, "set_alpha_to_one": False, "steps_offset": 1}
LOW_RES_SCHEDULER = {"_class_name": "DDPMScheduler", "num_train_timesteps": 1000, "beta_schedule": "scaled_linear",
                     "beta_start": 0.0001, "beta_end": 0.02}

#: what convert_if.py sets on every IF UNet (scale-shift norm, GELU, text pooled into the time embedding, group-norm
#: on the text before the added keys and values) ...
_IF_UNET = dict(mid_block_type="UNetMidBlock2DSimpleCrossAttn", addition_embed_type="text",
                cross_attention_norm="group_norm", resnet_time_scale_shift="scale_shift", act_fn="gelu")
#: ... and on the super-resolution UNets (get_super_res_unet): the augmentation level as a timestep class label,
#: residuals scaled by 1/0.7071, cross-attention only (IF-II's disable_self_attentions), a time embedding as wide
#: as the last level
_SR_EXTRA = dict(class_embed_type="timestep", time_embedding_act_fn="gelu", resnet_skip_time_act=True,
                 resnet_out_scale_factor=1 / 0.7071, mid_block_scale_factor=1 / 0.7071, only_cross_attention=True)
_UP_UNET = dict(down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
                num_class_embeds=1000, in_channels=7, out_channels=4)


def _if_unet(channels, layers, *, attention: int, head_dim: int, text_dim: int, pool_heads: int, sr: bool,
             size: int) -> dict:
    """An IF UNet as convert_if.py builds it: ``attention`` lowest-resolution levels with attention
    (``SimpleCrossAttn*``, the original's attention_resolutions), the others ``Resnet*`` (resblock_updown);
    the text (``text_dim``) projected to the first level's width for the attention's added keys and values."""
    n = len(channels)
    cfg = {**_IF_UNET, "block_out_channels": tuple(channels), "layers_per_block": layers, "attention_head_dim": head_dim,
           "cross_attention_dim": channels[0], "encoder_hid_dim": text_dim, "addition_embed_type_num_heads": pool_heads,
           "in_channels": 6 if sr else 3, "out_channels": 6, "sample_size": size, "norm_num_groups": min(32, channels[0] // 2),
           "down_block_types": tuple("SimpleCrossAttnDownBlock2D" if i >= n - attention else "ResnetDownsampleBlock2D"
                                     for i in range(n)),
           "up_block_types": tuple("SimpleCrossAttnUpBlock2D" if i < attention else "ResnetUpsampleBlock2D"
                                   for i in range(n))}
    if sr:
        cfg.update(_SR_EXTRA, time_embedding_dim=channels[-1])
    return cfg


def _t5(d_model, d_ff, layers, heads, vocab=32128) -> dict:
    return {"vocab_size": vocab, "d_model": d_model, "d_ff": d_ff, "num_layers": layers, "num_heads": heads,
            "d_kv": d_model // heads, "feed_forward_proj": "gated-gelu", "is_encoder_decoder": False}


PRESETS = {
    "tiny": {  # tests: seconds.  8x8 base, 32x32 super-resolution, x4 upscaler to 128x128
        "t5": _t5(32, 64, 2, 4, vocab=1000), "sizes": (8, 32),
        "base": _if_unet((32, 64), 1, attention=1, head_dim=8, text_dim=32, pool_heads=2, sr=False, size=8),
        "sr": _if_unet((32, 64), 1, attention=1, head_dim=8, text_dim=32, pool_heads=2, sr=True, size=32),
        "upscaler": {"text": {"vocab_size": 1000, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                              "num_attention_heads": 4},
                     "unet": {"block_out_channels": (32, 64), "layers_per_block": 1, "cross_attention_dim": 32,
                              "attention_head_dim": 8, "norm_num_groups": 8},
                     "vae": {"block_out_channels": (16, 16, 16), "layers_per_block": 1, "norm_num_groups": 8}},
        "steps": (2, 2, 2), "stages": 3,
    },
    "small": {  # the CPU bench: a shorter cascade (base 32x32, super-resolution to 128x128) at reduced widths
        "t5": _t5(256, 1024, 4, 4, vocab=8192), "sizes": (32, 128),
        "base": _if_unet((64, 128, 256), 1, attention=2, head_dim=32, text_dim=256, pool_heads=4, sr=False, size=32),
        # attention at 32x32 and 16x16, as IF-II
        "sr": _if_unet((32, 64, 128, 128), 1, attention=2, head_dim=32, text_dim=256, pool_heads=2, sr=True, size=128),
        "upscaler": {"text": {"vocab_size": 8192, "hidden_size": 256, "intermediate_size": 1024, "num_hidden_layers": 4,
                              "num_attention_heads": 4},
                     "unet": {"block_out_channels": (64, 128), "layers_per_block": 1, "cross_attention_dim": 256,
                              "attention_head_dim": 8, "norm_num_groups": 32},
                     "vae": {"block_out_channels": (32, 64, 64), "layers_per_block": 1, "norm_num_groups": 32}},
        "steps": (10, 5, 5), "stages": 2,
    },
    # The released layout.  T5: t5-v1_1-xxl's encoder (convert_if.py loads google/t5-v1_1-xxl).  The UNets' layout is
    # read from convert_if.py: IF-I's attention_resolutions 32,16,8 at 64x64 (attention at three of four levels),
    # 64-channel heads (num_head_channels), 64 pooling heads over the 4096-wide T5 text; IF-II's five levels of
    # 2, 2, 3, 5, 5 residual blocks (its verify_param_count block slices), cross-attention at its two lowest
    # levels.  The released configs' widths are not public outside the gated checkpoints: the widths below are
    # fitted so that the UNets have the model cards' sizes (IF-I-XL 4.3B: 4.10B here; IF-II-L 1.2B: 1.19B here).
    # Stage III is stabilityai/stable-diffusion-x4-upscaler's layout (OpenCLIP-H text encoder, 4-level UNet, VAE).
    "if": {
        "t5": _t5(4096, 10240, 24, 64), "sizes": (64, 256),
        "base": _if_unet((704, 1408, 2112, 2816), 3, attention=3, head_dim=64, text_dim=4096, pool_heads=64, sr=False,
                         size=64),
        "sr": _if_unet((192, 384, 768, 1152, 1152), (2, 2, 3, 5, 5), attention=2, head_dim=64, text_dim=4096,
                       pool_heads=64, sr=True, size=256),
        "upscaler": {"text": {"vocab_size": 49408, "hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 23,
                              "num_attention_heads": 16},
                     "unet": {"block_out_channels": (256, 512, 512, 1024), "layers_per_block": 2,
                              "cross_attention_dim": 1024, "attention_head_dim": 8, "norm_num_groups": 32,
                              "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                                                   "CrossAttnDownBlock2D"),
                              "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D",
                                                 "UpBlock2D")},
                     "vae": {"block_out_channels": (128, 256, 512), "layers_per_block": 2, "norm_num_groups": 32}},
        "steps": (100, 50, 75), "stages": 3, "meta": True,
    },
}


def t5_style_tokenizer(vocab_size: int, max_length: int = 77):
    """A byte-level BPE tokenizer trained offline with T5's framing: ``… </s>``, padded with ``<pad>``."""
    from genaccel.workload import train_bpe_tokenizer
    from tokenizers.processors import TemplateProcessing

    tok = train_bpe_tokenizer(vocab_size, special_tokens=["<pad>", "</s>", "<unk>"], name="t5")
    tok._tokenizer.post_processor = TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    tok.pad_token, tok.eos_token, tok.unk_token = "<pad>", "</s>", "<unk>"
    tok.model_max_length = max_length
    return tok


def stage_scheduler(name: str, config: dict):
    """A stage's scheduler of kind ``name``.  IF's UNets predict a learned variance beside the noise, which only
    the schedulers with a ``variance_type`` (DDPM, DPM-Solver) use; the others get a fixed variance in their
    config, so that ``IFPipeline`` and our loop both drop the predicted one."""
    import inspect

    scheduler = make_scheduler(name, config)
    if "variance_type" not in inspect.signature(type(scheduler).__init__).parameters and "variance_type" in config:
        scheduler = make_scheduler(name, {**config, "variance_type": "fixed_small"})
    return scheduler


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


class Imagen:
    """Text → a pixel-space cascade of images (``imagen/t-i``)."""

    units_per_sample = 1
    guidance_scale = 7.0

    def __init__(self, *, tokenizer, text_encoder, stages: list[Stage], defaults: dict, device: str, dtype,
                 random_weights: bool, name: str, data=None):
        self.tokenizer, self.text_encoder, self.stages = tokenizer, text_encoder, stages
        self.defaults, self.device, self.dtype = dict(defaults), device, dtype
        self.random_weights, self.name, self.data = random_weights, name, data
        parts = {"text_encoder": text_encoder}
        for i, st in enumerate(stages):
            parts[f"unet_{i + 1}"] = st.unet
            if st.kind == "upscaler":
                parts["upscaler_text_encoder"], parts["upscaler_vae"] = st.text_encoder, st.vae
        self.module = torch.nn.ModuleDict(parts).eval()
        self.executor = StepExecutor(device)
        self.attention, self.channels_last, self.compile_mode = "eager", False, None
        self.set_attention("eager")
        for i, (a, b) in enumerate(zip(stages, stages[1:])):
            if b.size // 4 != a.size:
                raise GenaccelError(f"{STAGE_NAMES[i + 1]} ({b.kind}) takes {b.size // 4}x{b.size // 4} images but "
                                    f"{STAGE_NAMES[i]} makes {a.size}x{a.size}")

    # -- Workload
    def make_samples(self, n: int, seed: int, max_new_tokens=None, seq_len=None) -> list[PromptSample]:
        return prompt_samples(self.tokenizer, self.data, n, seed)

    def prompt_sample(self, text: str, max_new_tokens=None, options=None) -> PromptSample:
        return prompt_sample(self.tokenizer, text)

    def describe(self) -> dict:
        def count(m):
            return sum(p.numel() for p in m.parameters())

        return {"name": self.name, "parameters": count(self.module), "text_encoder_parameters": count(self.text_encoder),
                "stages": [{"kind": s.kind, "size": s.size, "unet_parameters": count(s.unet)} for s in self.stages],
                "attention": self.attention, "executor": self.executor.mode, **self.defaults}

    # -- settings
    def settings(self, ctx) -> Settings:
        options = ctx.config.options
        name = options.get("scheduler")
        if name is not None and name not in SCHEDULERS:
            raise GenaccelError(f"--scheduler {name!r} is not known; choose one of {', '.join(SCHEDULERS)}")
        stages = int(options.get("stages") or self.defaults["stages"])
        if not 1 <= stages <= len(self.stages):
            raise GenaccelError(f"--stages must be between 1 and {len(self.stages)} (the cascade's stages), got {stages}")
        steps = []
        for key, default in zip(("num_inference_steps", "sr_steps", "upscaler_steps"), self.defaults["steps"]):
            value = options.get(key)
            value = default if value is None else int(value)
            if value < 1:
                raise GenaccelError(f"--{key.replace('_', '-')} must be at least 1, got {value}")
            steps.append(value)
        scale = options.get("guidance_scale")
        scale = self.guidance_scale if scale is None else float(scale)
        return Settings(scheduler=name, steps=tuple(steps), guidance_scale=scale, stages=stages)

    # -- text
    def encode_prompt(self, prompts: list[str]) -> torch.Tensor:
        """As ``IFPipeline.encode_prompt`` (captions lower-cased, 77 tokens, T5 with its attention mask)."""
        prompts = [p.lower().strip() for p in prompts]
        enc = self.tokenizer(prompts, padding="max_length", max_length=77, truncation=True, add_special_tokens=True,
                             return_tensors="pt")
        return self.text_encoder(enc.input_ids.to(self.device), attention_mask=enc.attention_mask.to(self.device))[0]

    def encode_upscaler_prompt(self, stage: Stage, prompts: list[str]) -> torch.Tensor:
        tok = stage.tokenizer
        ids = tok(prompts, padding="max_length", max_length=tok.model_max_length, truncation=True,
                  return_tensors="pt").input_ids.to(self.device)
        return stage.text_encoder(ids)[0].to(self.dtype)

    # -- the UNet forwards, through the step executor
    def unet_forward(self, index: int, x, t, embeddings, class_labels=None):
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        unet = self.stages[index].unet

        def forward(x, t, emb, labels):
            return unet(x, t, encoder_hidden_states=emb, class_labels=labels, return_dict=False)[0]

        return self.executor.run(f"unet_{index + 1}", forward, x, t, embeddings, class_labels)

    def vae_decode(self, stage: Stage, latents):
        if self.channels_last:
            latents = latents.contiguous(memory_format=torch.channels_last)
        return self.executor.run("vae", lambda z: stage.vae.decode(z, return_dict=False)[0],
                                 latents / stage.vae.config.scaling_factor)

    # -- the cascade
    @torch.no_grad()
    def guided_run(self, ctx, batch, sequential: bool) -> BatchResult:
        from diffusers.utils.torch_utils import randn_tensor

        s = self.settings(ctx)
        dev, bsz = self.device, len(batch)
        guided = s.guidance_scale > 1.0
        prompts = [sample.prompt for sample in batch]
        self.executor.new_batch()
        phases, step_s, images = {}, [], []

        def generators(stage_index):
            return [torch.Generator().manual_seed(sample.seed + 7919 * stage_index) for sample in batch]

        def guide(run_unet, x, extra_c, extra_u, split):
            """The UNet on x (conditional and unconditional), guided; the learned variance kept from the conditional."""
            if not guided:
                return run_unet(x, *extra_c)
            if sequential:
                u, c = run_unet(x, *extra_u), run_unet(x, *extra_c)
            else:
                u, c = run_unet(torch.cat([x, x]), *[torch.cat([a, b]) if a is not None else None
                                                     for a, b in zip(extra_u, extra_c)]).chunk(2)
            if split and c.shape[1] == 2 * split:
                (u, _), (c, var) = u.split(split, dim=1), c.split(split, dim=1)
                return torch.cat([u + s.guidance_scale * (c - u), var], dim=1)
            return u + s.guidance_scale * (c - u)

        t0 = synced_now(dev)
        with phase("text encoder"):
            cond = self.encode_prompt(prompts).to(self.dtype)
            uncond = self.encode_prompt([""] * bsz).to(self.dtype) if guided else None
        phases["text encoder"] = synced_now(dev) - t0
        image = None
        for index in range(s.stages):
            stage, gens, name = self.stages[index], generators(index), STAGE_NAMES[index]
            t_start = synced_now(dev)
            with phase(name):
                scheduler = stage_scheduler(s.scheduler or _scheduler_name(stage.scheduler_config), stage.scheduler_config)
                scheduler.set_timesteps(s.steps[index], device=dev)
                if hasattr(scheduler, "set_begin_index"):
                    scheduler.set_begin_index(0)
                extra = _step_kwargs(scheduler, gens)
                learned = scheduler.config.get("variance_type") in ("learned", "learned_range")
                clock = StepClock(dev)
                clock.start()
                if stage.kind == "base":
                    x = randn_tensor((bsz, 3, stage.size, stage.size), generator=gens, device=torch.device(dev),
                                     dtype=self.dtype) * scheduler.init_noise_sigma
                    for t in scheduler.timesteps:
                        noise = guide(lambda inp, emb: self.unet_forward(index, scheduler.scale_model_input(inp, t), t, emb),  # noqa: B023 - called at once
                                      x, (cond,), (uncond,), 3)
                        if not learned:
                            noise = noise[:, :3]
                        x = scheduler.step(noise, t, x, **extra, return_dict=False)[0]
                        clock.mark()
                elif stage.kind == "sr":
                    image = self.check_input(stage, image, index)
                    x = randn_tensor((bsz, 3, stage.size, stage.size), generator=gens, device=torch.device(dev),
                                     dtype=self.dtype) * scheduler.init_noise_sigma
                    up = F.interpolate(image, (stage.size, stage.size), mode="bilinear", align_corners=True)
                    level = torch.tensor([stage.noise_level] * bsz, device=dev)
                    noise = randn_tensor(up.shape, generator=gens, device=torch.device(dev), dtype=up.dtype)
                    up = make_scheduler("ddpm", stage.noising_config).add_noise(up, noise, timesteps=level)
                    for t in scheduler.timesteps:
                        def run(inp, emb, labels, t=t):
                            return self.unet_forward(index, scheduler.scale_model_input(torch.cat([inp, up if inp.shape[0] == bsz  # noqa: B023 - called at once
                                                                                                    else torch.cat([up, up])], 1), t),  # noqa: B023 - called at once
                                                     t, emb, labels)
                        noise = guide(run, x, (cond, level), (uncond, level), 3)
                        if not learned:
                            noise = noise[:, :3]
                        x = scheduler.step(noise, t, x, **extra, return_dict=False)[0]
                        clock.mark()
                else:  # the x4 latent upscaler
                    image = self.check_input(stage, image, index)
                    u_cond = self.encode_upscaler_prompt(stage, prompts)
                    u_uncond = self.encode_upscaler_prompt(stage, [""] * bsz) if guided else None
                    level = torch.tensor([stage.noise_level], dtype=torch.long, device=dev)
                    noise = randn_tensor(image.shape, generator=gens, device=torch.device(dev), dtype=self.dtype)
                    low = make_scheduler("ddpm", stage.noising_config).add_noise(image.to(self.dtype), noise, level)
                    level = level.expand(bsz)
                    x = randn_tensor((bsz, stage.vae.config.latent_channels, *image.shape[2:]), generator=gens,
                                     device=torch.device(dev), dtype=self.dtype) * scheduler.init_noise_sigma
                    for t in scheduler.timesteps:
                        def run(inp, emb, labels, t=t):
                            lows = low if inp.shape[0] == bsz else torch.cat([low, low])  # noqa: B023 - called at once
                            return self.unet_forward(index, torch.cat([scheduler.scale_model_input(inp, t), lows], 1),  # noqa: B023 - called at once
                                                     t, emb, labels)
                        noise = guide(run, x, (u_cond, level), (u_uncond, level), 0)
                        x = scheduler.step(noise, t, x, **extra, return_dict=False)[0]
                        clock.mark()
                    x = self.vae_decode(stage, x)
                times = clock.seconds()
                step_s += [b - a for a, b in zip([0.0, *times], times)]
            image = x
            images.append((x / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).float().cpu())
            phases[name] = synced_now(dev) - t_start
        latency = synced_now(dev) - t0
        files = self.save_outputs(batch, images, ctx.config.out_dir)
        steps = len(step_s)
        records = [{"id": sample.id, "input_tokens": sample.input_tokens, "output_tokens": 0, "latency_s": latency,
                    "ttft_s": None, "tpot_s": None, "steps": steps, "units": 1, "phases": dict(phases), **f}
                   for sample, f in zip(batch, files)]
        return BatchResult(records=records, outputs=[[] for _ in batch], latency_s=latency,
                           prefill_s=phases["text encoder"], decode_s=latency - phases["text encoder"],
                           decode_steps=steps, weight_passes=2 if guided and sequential else 1, step_s=step_s,
                           phases=phases,
                           extra={"denoise": {**attrs.asdict(s), "batched": not sequential, "guided": guided},
                                  "media": images[-1], "stages": images})

    def pipelines(self, scheduler: str | None) -> list:
        """``diffusers``' own pipelines of the stages, on these weights: ``IFPipeline``,
        ``IFSuperResolutionPipeline``, ``StableDiffusionUpscalePipeline``."""
        from diffusers import IFPipeline, IFSuperResolutionPipeline, StableDiffusionUpscalePipeline

        pipes = []
        for stage in self.stages:
            sched = stage_scheduler(scheduler or _scheduler_name(stage.scheduler_config), stage.scheduler_config)
            common = dict(safety_checker=None, feature_extractor=None, watermarker=None, requires_safety_checker=False)
            if stage.kind == "base":
                pipe = IFPipeline(tokenizer=self.tokenizer, text_encoder=self.text_encoder, unet=stage.unet,
                                  scheduler=sched, **common)
            elif stage.kind == "sr":
                pipe = IFSuperResolutionPipeline(tokenizer=self.tokenizer, text_encoder=self.text_encoder, unet=stage.unet,
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
    def pipeline_run(self, ctx, batch) -> BatchResult:
        """The reference: ``diffusers``' pipelines stage by stage (their default attention, SDPA) on the same
        weights, seeds and settings; each pipeline encodes the prompt itself, as a user chaining them does."""
        if self.attention != "sdpa":
            self.set_attention("sdpa")  # diffusers' and transformers' defaults
        s = self.settings(ctx)
        prompts = [sample.prompt for sample in batch]
        phases, images, image = {}, [], None  # each pipeline encodes its prompt inside its stage
        t0 = synced_now(self.device)
        for index, pipe in enumerate(self.pipelines(s.scheduler)[:s.stages]):
            stage = self.stages[index]
            gens = [torch.Generator().manual_seed(sample.seed + 7919 * index) for sample in batch]
            args = dict(num_inference_steps=s.steps[index], guidance_scale=s.guidance_scale, generator=gens,
                        output_type="pt")
            t_start = synced_now(self.device)
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
            phases[STAGE_NAMES[index]] = synced_now(self.device) - t_start
            images.append(shown.clamp(0, 1).permute(0, 2, 3, 1).float().cpu())
        latency = synced_now(self.device) - t0
        files = self.save_outputs(batch, images, ctx.config.out_dir)
        steps = sum(s.steps[:s.stages])
        records = [{"id": sample.id, "input_tokens": sample.input_tokens, "output_tokens": 0, "latency_s": latency,
                    "ttft_s": None, "tpot_s": None, "steps": steps, "units": 1, "phases": dict(phases), **f}
                   for sample, f in zip(batch, files)]
        return BatchResult(records=records, outputs=[[] for _ in batch], latency_s=latency, prefill_s=0.0,
                           decode_s=latency, decode_steps=steps, weight_passes=1, phases=phases,
                           extra={"media": images[-1], "stages": images})

    def check_input(self, stage: Stage, image, index: int):
        """A super-resolution stage's input: the previous stage's image, at the size this stage upscales from."""
        if image is None:
            raise GenaccelError(f"{STAGE_NAMES[index]} ({stage.kind}) needs the previous stage's image")
        expected = stage.size // 4
        if image.shape[-2:] != (expected, expected):
            raise GenaccelError(f"{STAGE_NAMES[index]} ({stage.kind}) takes {expected}x{expected} images, "
                                f"got {image.shape[-2]}x{image.shape[-1]}")
        return image

    def save_outputs(self, batch, images, out_dir) -> list[dict]:
        from PIL import Image

        extras = []
        for row, sample in enumerate(batch):
            extra = {"image_size": list(images[-1][row].shape[:2])}
            if out_dir:
                folder = Path(out_dir) / "images"
                folder.mkdir(parents=True, exist_ok=True)
                extra["files"] = []
                for i, stage_images in enumerate(images):
                    path = folder / f"{sample.id.replace('/', '-')}-stage{i + 1}.png"
                    Image.fromarray((stage_images[row].numpy() * 255).round().astype("uint8")).save(path)
                    extra["files"].append(str(path))
            extras.append(extra)
        return extras

    # -- switches the optimizations call
    def set_attention(self, impl: str) -> None:
        from diffusers.models.attention_processor import (
            AttnAddedKVProcessor,
            AttnAddedKVProcessor2_0,
            AttnProcessor,
            AttnProcessor2_0,
        )

        if impl not in ("eager", "sdpa"):
            raise GenaccelError(f"attention {impl!r} is not offered by {self.name}; use eager or sdpa")
        added = {"eager": AttnAddedKVProcessor, "sdpa": AttnAddedKVProcessor2_0}[impl]
        plain = {"eager": AttnProcessor, "sdpa": AttnProcessor2_0}[impl]
        for stage in self.stages:
            procs = {}
            for key in stage.unet.attn_processors:
                module = stage.unet.get_submodule(key.rsplit(".processor", 1)[0])
                procs[key] = added() if getattr(module, "added_kv_proj_dim", None) else plain()
            stage.unet.set_attn_processor(procs)
            if stage.vae is not None:
                stage.vae.set_attn_processor(plain())
            if stage.text_encoder is not None:
                stage.text_encoder.set_attn_implementation(impl)
        self.text_encoder.set_attn_implementation(impl)
        self.attention = impl

    def set_channels_last(self) -> str:
        self.channels_last = True
        n = channels_last([part for stage in self.stages for part in (stage.unet, stage.vae)])
        return f"{n} Conv2d weights and the stages' 4-D inputs in channels-last (NHWC) layout"

    def set_compile(self, mode: str) -> str:
        self.compile_mode = mode
        self.executor.configure(compile=mode, fullgraph=True, dynamic=False)
        return f"every stage's UNet (and the upscaler's VAE decode) compiled through the step executor (mode={mode})"

    def set_cuda_graph(self) -> str:
        self.executor.configure(compile=self.compile_mode, cuda_graph=True)
        return "every stage's UNet replayed from CUDA graphs per shape (step executor)"


def _scheduler_name(config: dict) -> str:
    """A stage's own scheduler (IF's stages: DDPM; the x4 upscaler: DDIM), used unless ``--scheduler`` names one."""
    return scheduler_name(config, "ddpm")


# --- building -------------------------------------------------------------------------------------


def _build(make, meta: bool, device, dtype, seed):
    if meta:
        with torch.device("meta"):
            module = make()
        return materialize(module, device, dtype, seed)
    torch.manual_seed(seed)
    module = make().to(device)
    return module if dtype == torch.float32 else module.to(dtype)


def build_preset(preset: dict, *, device, dtype, seed: int) -> dict:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from genaccel.denoise import part_configs
    from transformers import T5Config, T5EncoderModel

    meta = bool(preset.get("meta"))
    t5 = T5Config(**preset["t5"])
    text_encoder = _build(lambda: T5EncoderModel(t5), meta, device, dtype, seed)
    tokenizer = t5_style_tokenizer(preset["t5"]["vocab_size"])
    base_size, sr_size = preset["sizes"]
    stages = [Stage(kind="base", unet=_build(lambda: UNet2DConditionModel(**preset["base"]), meta, device, dtype, seed + 1),
                    scheduler_config=IF_SCHEDULER, size=base_size),
              Stage(kind="sr", unet=_build(lambda: UNet2DConditionModel(**preset["sr"]), meta, device, dtype, seed + 2),
                    scheduler_config=IF_SR_SCHEDULER, size=sr_size, noise_level=250, noising_config=NOISING_SCHEDULER)]
    up = preset["upscaler"]
    text_cfg, unet_cfg, vae_cfg = part_configs({"text": up["text"], "unet": {**_UP_UNET, **up["unet"]}, "vae": up["vae"],
                                                "image_size": sr_size * 4})
    unet_cfg.update(in_channels=7, out_channels=4, sample_size=sr_size)
    vae_cfg["scaling_factor"] = 0.08333
    from transformers import CLIPTextModel

    stages.append(Stage(kind="upscaler", size=sr_size * 4, noise_level=100, noising_config=LOW_RES_SCHEDULER,
                        scheduler_config=UPSCALER_SCHEDULER, tokenizer=clip_style_tokenizer(up["text"]["vocab_size"]),
                        text_encoder=_build(lambda: CLIPTextModel(text_cfg), meta, device, dtype, seed + 3),
                        unet=_build(lambda: UNet2DConditionModel(**unet_cfg), meta, device, dtype, seed + 4),
                        vae=_build(lambda: AutoencoderKL(**vae_cfg), meta, device, dtype, seed + 5)))
    return {"tokenizer": tokenizer, "text_encoder": text_encoder, "stages": stages}


def load_checkpoint(path, *, device, dtype) -> dict:
    """``DIR/stage_1`` (an ``IFPipeline`` folder: T5 encoder, tokenizer, UNet, scheduler), ``DIR/stage_2`` (an
    ``IFSuperResolutionPipeline`` folder, text encoder optional) and optionally ``DIR/stage_3`` (a
    ``StableDiffusionUpscalePipeline`` folder)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import AutoTokenizer, CLIPTextModel, T5EncoderModel

    path = Path(path)
    if not path.is_dir():
        raise GenaccelError(f"checkpoint {str(path)!r} is not a folder")
    present = [(path / f / "model_index.json").is_file() for f in STAGE_FOLDERS]
    if not present[0] or not present[1]:
        missing = [f for f, ok in zip(STAGE_FOLDERS[:2], present) if not ok]
        raise GenaccelError(f"checkpoint {str(path)!r} lacks the cascade stage(s) {', '.join(missing)} "
                            f"(diffusers pipeline folders with model_index.json)")

    def load(what, fn, folder):
        try:
            return fn(folder)
        except Exception as e:  # noqa: BLE001 - any failure here is a broken folder
            raise cannot_load(folder, f"its {what}", e) from None

    def scheduler(folder):
        return json.loads((folder / "scheduler_config.json").read_text())

    def unet(folder):
        return UNet2DConditionModel.from_pretrained(folder, torch_dtype=dtype).to(device)

    s1, s2 = path / "stage_1", path / "stage_2"
    tokenizer = load("tokenizer", AutoTokenizer.from_pretrained, s1 / "tokenizer")
    text_encoder = load("text encoder", lambda p: T5EncoderModel.from_pretrained(p, dtype=dtype).to(device),
                        s1 / "text_encoder")
    base_unet = load("unet", unet, s1 / "unet")
    sr_unet = load("unet", unet, s2 / "unet")
    stages = [Stage(kind="base", unet=base_unet, scheduler_config=load("scheduler", scheduler, s1 / "scheduler"),
                    size=base_unet.config.sample_size),
              Stage(kind="sr", unet=sr_unet, scheduler_config=load("scheduler", scheduler, s2 / "scheduler"),
                    size=sr_unet.config.sample_size, noise_level=250,
                    noising_config=load("image noising scheduler", scheduler, s2 / "image_noising_scheduler"))]
    if present[2]:
        s3 = path / "stage_3"
        vae = load("vae", lambda p: AutoencoderKL.from_pretrained(p, torch_dtype=dtype).to(device), s3 / "vae")
        up_unet = load("unet", unet, s3 / "unet")
        scale = 2 ** (len(vae.config.block_out_channels) - 1)
        stages.append(Stage(kind="upscaler", unet=up_unet, size=up_unet.config.sample_size * scale, noise_level=100,
                            scheduler_config=load("scheduler", scheduler, s3 / "scheduler"),
                            noising_config=load("low-res scheduler", scheduler, s3 / "low_res_scheduler"),
                            tokenizer=load("tokenizer", AutoTokenizer.from_pretrained, s3 / "tokenizer"),
                            text_encoder=load("text encoder", lambda p: CLIPTextModel.from_pretrained(p, dtype=dtype)
                                              .to(device), s3 / "text_encoder"),
                            vae=vae))
    return {"tokenizer": tokenizer, "text_encoder": text_encoder, "stages": stages}


def build(options) -> Imagen:
    dtype, device = options.torch_dtype, options.device
    if options.checkpoint is not None:
        parts = load_checkpoint(options.checkpoint, device=device, dtype=dtype)
        defaults = {"steps": (100, 50, 75), "stages": len(parts["stages"])}
        name, random_weights = f"imagen ({Path(options.checkpoint).name})", False
    else:
        preset = options.preset or "small"
        parts = build_preset(PRESETS[preset], device=device, dtype=dtype, seed=options.seed)
        defaults = {"steps": PRESETS[preset]["steps"], "stages": PRESETS[preset]["stages"]}
        name, random_weights = f"imagen {preset}", True
    return Imagen(**parts, defaults=defaults, device=device, dtype=dtype, random_weights=random_weights, name=name,
                  data=options.data)


# --- characterization: sequence length over one inference ------------------------------------------


def run_once(instance, options: dict, prompt: str = PROMPTS[0]) -> BatchResult:
    """One guided inference of ``prompt`` outside a run (characterization)."""
    from genaccel.runner import RunConfig, RunContext

    config = attrs.evolve(RunConfig(workload=instance.name), options={k: v for k, v in options.items() if v is not None})
    ctx = RunContext(config=config, workload=None, instance=instance, stack=None)
    return instance.guided_run(ctx, [instance.prompt_sample(prompt)], sequential=False)


def sequence_profile(instance, steps: int = 1) -> dict:
    """The attention sequence lengths over one inference of the cascade, per stage: every attention call of the
    stage's first UNet forward (query length: the positions of the feature map it attends from; key length: those
    positions and the text, or the text alone where a block attends only across, as IF-II's), and the max/min of
    the query lengths — a U per stage (down, mid, up), stage after stage at growing resolution."""
    from diffusers.models.attention_processor import Attention

    calls, state, handles = [], {"stage": None, "forward": 0}, []

    def on_unet(name):
        def hook(module, args, kwargs):
            if state["stage"] != name:
                state["stage"], state["forward"] = name, 0
            else:
                state["forward"] += 1
        return hook

    def on_attention(module, args, kwargs):
        if state["forward"]:
            return
        hidden = args[0] if args else kwargs["hidden_states"]
        lq = hidden.shape[2] * hidden.shape[3] if hidden.dim() == 4 else hidden.shape[1]
        context = kwargs.get("encoder_hidden_states")
        added = getattr(module, "added_kv_proj_dim", None) is not None
        cross = context is not None and (not added or getattr(module, "only_cross_attention", False))
        lk = context.shape[1] if cross else lq + (context.shape[1] if context is not None else 0)
        calls.append({"stage": state["stage"], "kind": "cross" if cross else "self", "query_len": lq, "key_len": lk})

    for index, stage in enumerate(instance.stages):
        handles.append(stage.unet.register_forward_pre_hook(on_unet(STAGE_NAMES[index]), with_kwargs=True))
        for module in stage.unet.modules():
            if isinstance(module, Attention):
                handles.append(module.register_forward_pre_hook(on_attention, with_kwargs=True))
    try:
        run_once(instance, {"num_inference_steps": steps, "sr_steps": steps, "upscaler_steps": steps,
                            "stages": len(instance.stages)})
    finally:
        for h in handles:
            h.remove()
    out = {}
    for name in STAGE_NAMES[:len(instance.stages)]:
        own = [c for c in calls if c["stage"] == name]
        lens = [c["query_len"] for c in own]
        out[name] = {"calls": own, "query_lengths": lens, "max": max(lens), "min": min(lens),
                     "ratio": max(lens) / min(lens)}
    return out
