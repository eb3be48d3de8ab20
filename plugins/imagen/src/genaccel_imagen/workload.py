"""Imagen's pixel-space cascade from ``diffusers``/``transformers`` parts, as DeepFloyd IF builds it:

- a T5 encoder (``T5EncoderModel``), shared by the base and super-resolution stages;
- stage I: a base UNet (``UNet2DConditionModel``, 3 → 6 channels: noise and learned variance)
  denoising a 64×64 image in pixel space (``IFPipeline``'s loop);
- stage II: a super-resolution UNet (6 → 6 channels) denoising a 256×256 image beside the
  bilinearly upscaled, noise-augmented stage-I image, the augmentation level its class label
  (``IFSuperResolutionPipeline``'s loop);
- stage III: the x4 latent upscaler (``StableDiffusionUpscalePipeline``: its own CLIP text
  encoder, a 7 → 4 channel UNet over latents the size of its input, a VAE decoding ×4).

Each stage is its own phase, with its own scheduler and steps (:mod:`genaccel_imagen.cascade`); the
outputs of every stage are saved as PNGs.  Building is in :mod:`genaccel_imagen.build`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from genaccel.api import (
    SCHEDULERS,
    BatchResult,
    CompiledSteps,
    GenaccelError,
    Prompted,
    StepExecutor,
    channels_last,
    find_attention_sites,
    parameters,
    writing,
)

from .cascade import Settings, Stage, run_cascade
from .presets import STAGE_NAMES


class Imagen(Prompted, CompiledSteps):
    """Text → a pixel-space cascade of images (``imagen/t-i``).  It plays GuidedLoop, PipelineReference,
    PromptInput, Quantizable, AttentionSwitch, ChannelsLast, Compilable and CUDAGraphable."""

    compiled_steps = "every stage's UNet (and the upscaler's VAE decode)"

    units_per_sample = 1
    guidance_scale = 7.0
    period_options = {"num_inference_steps": 1, "sr_steps": 1, "upscaler_steps": 1}  # AttentionRecord: a step a stage

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

    # -- AttentionRecord
    def attention_sites(self) -> list:
        """Every stage's UNet attention, stage after stage (``unet_1`` ...): ``spatial`` self-attention (IF's over
        its positions and the text), ``cross`` to the text alone."""
        return [site for i, st in enumerate(self.stages)
                for site in find_attention_sites(st.unet, f"unet_{i + 1}", self_kind="spatial")]

    # -- Workload

    def describe(self) -> dict:
        return {"name": self.name, "parameters": parameters(self.module), "text_encoder_parameters": parameters(self.text_encoder),
                "stages": [{"kind": s.kind, "size": s.size, "unet_parameters": parameters(s.unet)} for s in self.stages],
                "attention": self.attention, "executor": self.executor.mode, "inputs": self.input_source(), **self.defaults}

    # -- settings
    def settings(self, options: dict) -> Settings:
        """The run's scheduler, steps per stage, guidance scale and stages (the preset's where not given)."""
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

    # -- GuidedLoop and PipelineReference: the cascade and diffusers' pipelines
    def guided_run(self, batch, options: dict, sequential: bool, out_dir) -> BatchResult:
        return run_cascade(self, batch, self.settings(options), sequential=sequential, out_dir=out_dir)

    def pipeline_run(self, batch, options: dict, out_dir) -> BatchResult:
        from .pipelines import run_pipelines

        return run_pipelines(self, batch, self.settings(options), out_dir)

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
                extra["files"] = []
                for i, stage_images in enumerate(images):
                    path = folder / f"{sample.id.replace('/', '-')}-stage{i + 1}.png"
                    with writing(path):  # a full disk: one line naming the image
                        folder.mkdir(parents=True, exist_ok=True)
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

