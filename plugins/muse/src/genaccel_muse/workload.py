"""Muse's parallel decoding from ``diffusers``/``transformers`` parts, as ``AmusedPipeline`` runs it:

1. the prompt through a CLIP text encoder with projection (phase ``text encoder``): the pooled
   embedding and the penultimate hidden states; with guidance also the empty prompt;
2. a grid of VQ tokens, all masked; per step (phase ``decode``): the ``UVit2DModel`` predicts
   logits for every position (one forward of 2B rows with ``cfg``, two of B with
   ``cfg-sequential``), guided ``u + s·(c − u)``, and ``AmusedScheduler.step`` samples the masked
   positions, keeps the most confident and re-masks the rest along the cosine schedule;
3. the tokens through the ``VQModel`` decoder (phase ``vq decode``), saved as PNGs (untimed).
"""

from __future__ import annotations

from pathlib import Path

import torch
from genaccel.api import (
    BatchResult,
    CompiledSteps,
    GenaccelError,
    Prompted,
    StepExecutor,
    clip_style_tokenizer,
    find_attention_sites,
    materialize,
    parallel_settings,
    parameters,
    phase,
    save_images,
    synced_now,
)

from .presets import PRESETS, SCHEDULER

WORKLOAD = "muse/t-i"


class Muse(Prompted, CompiledSteps):
    """Text → one image per prompt by parallel decoding of VQ tokens (``muse/t-i``): the core's loop
    (role MaskedTokens) over aMUSEd's U-ViT, and ``AmusedPipeline`` as the reference."""

    compiled_steps = "the transformer step (every step the same shapes)"

    units_per_sample = 1
    decode_phase = "vq decode"
    period_options = {"num_inference_steps": 1}  # AttentionRecord: one parallel-decoding step

    def __init__(self, *, tokenizer, text_encoder, transformer, vqvae, scheduler_config: dict, steps: int, device: str,
                 dtype, random_weights: bool, name: str, data=None):
        self.tokenizer, self.text_encoder, self.transformer, self.vqvae = tokenizer, text_encoder, transformer, vqvae
        self.scheduler_config = dict(scheduler_config)
        self.decode_defaults = {"num_inference_steps": steps, "guidance_scale": 10.0}
        self.device, self.dtype, self.random_weights, self.name, self.data = device, dtype, random_weights, name, data
        self.module = torch.nn.ModuleDict({"text_encoder": text_encoder, "transformer": transformer,
                                           "vqvae": vqvae}).eval()
        self.executor = StepExecutor(device)
        self.vae_scale = 2 ** (len(vqvae.config.block_out_channels) - 1)
        self.attention, self.compile_mode = "eager", None
        self.set_attention("eager")

    # -- AttentionRecord
    def attention_sites(self) -> list:
        """The transformer's attention: ``self`` over every image token (masked or not), ``cross`` to the text."""
        return find_attention_sites(self.transformer, "transformer")

    # -- Workload

    @property
    def grid(self) -> int:
        return self.transformer.config.sample_size

    def describe(self) -> dict:
        return {"name": self.name, "parameters": parameters(self.module), "transformer_parameters": parameters(self.transformer),
                "text_encoder_parameters": parameters(self.text_encoder), "vq_parameters": parameters(self.vqvae),
                "tokens": self.grid ** 2, "image_size": self.grid * self.vae_scale, "attention": self.attention,
                "executor": self.executor.mode, "inputs": self.input_source(), **self.decode_defaults}

    # -- MaskedTokens: the core's parallel decoding drives these
    def temperatures(self, steps: int) -> tuple[float, float]:
        return (2.0, 0.0)  # AmusedPipeline's re-masking temperatures, annealed from 2 to 0

    def tokens_shape(self, batch_size: int) -> tuple[int, ...]:
        return (batch_size, self.grid, self.grid)

    def encode_prompt(self, prompts: list[str]) -> tuple:
        """As ``AmusedPipeline``: CLIP's pooled text embedding and penultimate hidden states, and the micro
        conditions (the image size, crop and aesthetic score 6) per prompt."""
        ids = self.tokenizer(prompts, return_tensors="pt", padding="max_length", truncation=True,
                             max_length=self.tokenizer.model_max_length).input_ids.to(self.device)
        out = self.text_encoder(ids, return_dict=True, output_hidden_states=True)
        hidden = out.hidden_states[-2]
        side = self.grid * self.vae_scale
        micro = torch.tensor([side, side, 0, 0, 6], device=self.device, dtype=hidden.dtype).expand(len(prompts), -1)
        return micro, out.text_embeds, hidden

    def token_logits(self, tokens, micro_conds, pooled, hidden):
        return self.executor.run("transformer", self._forward, tokens, micro_conds, pooled, hidden)

    def _forward(self, tokens, micro_conds, pooled, hidden):
        return self.transformer(tokens, micro_conds=micro_conds, pooled_text_emb=pooled, encoder_hidden_states=hidden)

    def decode_tokens(self, tokens) -> torch.Tensor:
        """Images (B, H, W, 3) in [0, 1] from the final tokens (the VQ-GAN's decoder)."""
        shape = (tokens.shape[0], self.grid, self.grid, self.vqvae.config.latent_channels)
        images = self.vqvae.decode(tokens, force_not_quantize=True, shape=shape).sample
        return images.clip(0, 1).permute(0, 2, 3, 1).float().cpu()

    @torch.no_grad()
    def pipeline_run(self, batch, options: dict, out_dir) -> BatchResult:
        """The reference: ``diffusers``' ``AmusedPipeline`` (its default attention, SDPA) on the same weights,
        seed and settings."""
        from diffusers import AmusedPipeline, AmusedScheduler

        if self.attention != "sdpa":
            self.set_attention("sdpa")  # diffusers' and transformers' defaults
        run = parallel_settings(options, self.decode_defaults, workload=WORKLOAD)
        steps, scale = run.num_inference_steps, run.guidance_scale
        pipe = AmusedPipeline(vqvae=self.vqvae, tokenizer=self.tokenizer, text_encoder=self.text_encoder,
                              transformer=self.transformer, scheduler=AmusedScheduler.from_config(self.scheduler_config))
        pipe.set_progress_bar_config(disable=True)
        t0 = synced_now(self.device)
        with phase("pipeline"):
            images = pipe([s.prompt for s in batch], num_inference_steps=steps, guidance_scale=scale,
                          generator=torch.Generator().manual_seed(batch[0].seed), output_type="pt").images
        latency = synced_now(self.device) - t0
        images = images.permute(0, 2, 3, 1).float().cpu()
        files = self.save_outputs(batch, images, out_dir)
        phases = {"pipeline": latency}
        records = [{"id": s.id, "input_tokens": s.input_tokens, "output_tokens": self.grid ** 2, "latency_s": latency,
                    "ttft_s": None, "tpot_s": None, "steps": steps, "units": 1, "phases": dict(phases), **f}
                   for s, f in zip(batch, files)]
        return BatchResult(records=records, outputs=[[] for _ in batch], latency_s=latency, prefill_s=0.0,
                           decode_s=latency, decode_steps=steps, weight_passes=1, phases=phases, extra={"media": images})

    def save_outputs(self, batch, images, out_dir) -> list[dict]:
        return save_images(batch, images, out_dir)

    # -- switches the optimizations call
    def set_attention(self, impl: str) -> None:
        from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

        if impl not in ("eager", "sdpa"):
            raise GenaccelError(f"attention {impl!r} is not offered by {self.name}; use eager or sdpa")
        self.transformer.set_attn_processor({"eager": AttnProcessor, "sdpa": AttnProcessor2_0}[impl]())
        self.text_encoder.set_attn_implementation(impl)
        self.attention = impl



def build(options) -> Muse:
    from diffusers import UVit2DModel, VQModel
    from transformers import AutoTokenizer, CLIPTextConfig, CLIPTextModelWithProjection

    dtype, device = options.torch_dtype, options.device
    if options.checkpoint is not None:
        import json

        path = Path(options.checkpoint)
        if not (path / "model_index.json").is_file():
            raise GenaccelError(f"checkpoint {str(path)!r} has no model_index.json; pass an AmusedPipeline folder")
        parts = {}
        for name, load in (
            ("tokenizer", AutoTokenizer.from_pretrained),
            ("text_encoder", lambda p: CLIPTextModelWithProjection.from_pretrained(p, dtype=dtype).to(device)),
            ("transformer", lambda p: UVit2DModel.from_pretrained(p, torch_dtype=dtype).to(device)),
            ("vqvae", lambda p: VQModel.from_pretrained(p, torch_dtype=dtype).to(device)),
            ("scheduler", lambda p: json.loads((p / "scheduler_config.json").read_text())),
        ):
            try:
                parts[name] = load(path / name)
            except Exception as e:  # noqa: BLE001 - any failure here is a broken folder
                raise GenaccelError(f"checkpoint {str(path)!r}: cannot load its {name} ({type(e).__name__})") from None
        scheduler_config = parts.pop("scheduler")
        return Muse(**parts, scheduler_config=scheduler_config, steps=12, device=device, dtype=dtype,
                    random_weights=False, name=f"muse ({path.name})", data=options.data)
    preset_name = options.preset_in(PRESETS, "muse/t-i")
    preset = PRESETS[preset_name]
    text_cfg = CLIPTextConfig(**preset["text"])

    def make():
        return [CLIPTextModelWithProjection(text_cfg), UVit2DModel(**preset["transformer"]), VQModel(**preset["vq"])]

    if preset.get("meta"):
        with torch.device("meta"):
            modules = make()
        modules = [materialize(m, device, dtype, options.seed + i) for i, m in enumerate(modules)]
    else:
        torch.manual_seed(options.seed)
        modules = [m.to(device) if dtype == torch.float32 else m.to(device, dtype) for m in make()]
    text_encoder, transformer, vqvae = modules
    scheduler_config = {**SCHEDULER, "mask_token_id": preset["transformer"]["vocab_size"] - 1}
    return Muse(tokenizer=clip_style_tokenizer(preset["text"]["vocab_size"]), text_encoder=text_encoder,
                transformer=transformer, vqvae=vqvae, scheduler_config=scheduler_config, steps=preset["steps"],
                device=device, dtype=dtype, random_weights=True, name=f"muse {preset_name}", data=options.data)
