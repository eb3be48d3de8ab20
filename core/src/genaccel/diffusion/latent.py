"""Base of latent-diffusion workloads made of ``diffusers``/``transformers`` parts: the Denoiser members
the core's loop calls, diffusers' pipeline as the reference, and the switches of the optimizations
(attention, fused QKV, channels-last, compile, CUDA graphs, the DeepCache step cache)."""

from __future__ import annotations

import torch
from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0, FusedAttnProcessor2_0

from ..engine.attention import find_attention_sites
from ..engine.executor import CompiledSteps, StepExecutor
from ..engine.layout import channels_last
from ..engine.native import cpu_ops
from ..errors import GenaccelError
from .conditioning import added_kwargs, flat
from .loop import settings
from .pipeline import make_pipeline, run_pipeline
from .prompts import Prompted, parameters
from .stepcache import full, is_3d, shallow
from .unet_attention import UNetAttention, narrow_heads


class LatentDiffusion(Prompted, CompiledSteps):
    """Base of diffusion workloads made of ``diffusers``/``transformers`` parts: ``tokenizer``,
    ``text_encoder`` (CLIP), ``unet`` (2-D or 3-D) and ``vae`` (``AutoencoderKL``), and for SDXL a
    second ``tokenizer_2`` and ``text_encoder_2`` (their conditioning is the subclass's
    ``encode_prompt``: :mod:`genaccel.diffusion.conditioning`).  It plays the
    roles Denoiser, PromptInput, PipelineReference, AttentionSwitch, FusedQKV, ChannelsLast,
    StepCache, Compilable and CUDAGraphable (its plugin's spec declares them).

    Subclasses set ``latent_shape``, ``decode_latents``, ``save_outputs``, ``units_per_sample`` and
    ``image_size`` (and ``frames`` for video).
    """

    compiled_steps = "UNet and VAE decode"
    period_options = {"num_inference_steps": 1}  # AttentionRecord: one period is one denoising step

    def __init__(self, *, tokenizer, text_encoder, unet, vae, scheduler_config: dict, denoise_defaults: dict,
                 device: str, dtype, random_weights: bool, name: str, data=None, tokenizer_2=None, text_encoder_2=None):
        self.tokenizer, self.text_encoder, self.unet, self.vae = tokenizer, text_encoder, unet, vae
        self.tokenizer_2, self.text_encoder_2 = tokenizer_2, text_encoder_2
        self.text_encoders = tuple(e for e in (text_encoder, text_encoder_2) if e is not None)
        self.scheduler_config, self.denoise_defaults = dict(scheduler_config), dict(denoise_defaults)
        self.device, self.dtype, self.random_weights, self.name, self.data = device, dtype, random_weights, name, data
        parts = {"text_encoder": text_encoder, "text_encoder_2": text_encoder_2, "unet": unet, "vae": vae}
        self.module = torch.nn.ModuleDict({k: m for k, m in parts.items() if m is not None}).eval()
        self.executor = StepExecutor(device)
        self.attention, self.fused_qkv, self.channels_last, self.compile_mode = "eager", False, False, None
        self.cache_interval = None  # the step cache (deepcache): full UNet every N-th step
        self._step, self._call, self._deep = 0, 0, {}
        self._pipeline = None  # diffusers' own pipeline on these parts (the reference), made on first use
        self.set_attention("eager")  # the baseline is diffusers' plain AttnProcessor (matmul, softmax, matmul)

    # -- Workload

    def describe(self) -> dict:
        return {"name": self.name, "parameters": parameters(self.module),
                **{f"{k}_parameters": parameters(m) for k, m in self.module.items()}, "latent_shape": self.latent_shape(1),
                "attention": self.attention, "executor": self.executor.mode, "inputs": self.input_source(),
                **self.denoise_defaults}

    # -- AttentionRecord
    def attention_sites(self) -> list:
        """The UNet's attention modules: ``spatial`` self-attention, ``cross`` to the text, ``temporal``."""
        return find_attention_sites(self.unet, "unet", self_kind="spatial")

    # -- PipelineReference
    def pipeline_run(self, batch, options: dict, out_dir):
        s = settings(options, self.denoise_defaults)
        if self._pipeline is None:
            self._pipeline = self.reference_pipeline(s)
        return run_pipeline(self, self._pipeline, batch, s, out_dir)

    def reference_pipeline(self, s):
        """diffusers' own pipeline on these parts (SDXL's subclass makes its own)."""
        return make_pipeline(self, s)

    # -- Denoiser
    def encode_prompt(self, prompts: list[str]) -> torch.Tensor:
        """As ``diffusers``' ``encode_prompt``: padded to the tokenizer's max length, last hidden state."""
        ids = self.tokenizer(prompts, padding="max_length", max_length=self.tokenizer.model_max_length,
                             truncation=True, return_tensors="pt").input_ids.to(self.device)
        mask = None
        if getattr(self.text_encoder.config, "use_attention_mask", False):
            mask = (ids != self.tokenizer.pad_token_id).long()
        return self.text_encoder(ids, attention_mask=mask)[0].to(self.dtype)

    def encode_negative(self, batch_size: int):
        """Classifier-free guidance's unconditional embeddings: the empty prompt's."""
        return self.encode_prompt([""] * batch_size)

    def predict_noise(self, latents: torch.Tensor, t, embeddings) -> torch.Tensor:
        """The UNet's prediction; ``embeddings``: hidden states, or a tuple with SDXL's added conditions."""
        if self.channels_last and latents.dim() == 4:
            latents = latents.contiguous(memory_format=torch.channels_last)
        if self.cache_interval is None:
            return self.executor.run("unet", self._unet_forward, latents, t, *flat(embeddings))
        return self._cached_forward(latents, t, flat(embeddings))

    def begin_step(self, index: int) -> None:
        """The denoising loop starts step ``index`` (0 for a batch's first)."""
        self._step, self._call = index, 0
        if index == 0:
            self._deep = {}

    def _cached_forward(self, latents, t, cond: tuple):
        """The step cache: the whole UNet every ``cache_interval``-th step, keeping its deep feature
        per forward of the step (cfg-sequential makes two); the shallow path on it in between."""
        call, self._call = self._call, self._call + 1
        deep = self._deep.get(call)
        if self._step % self.cache_interval == 0 or deep is None or deep.shape[0] != latents.shape[0] * (
                latents.shape[2] if latents.dim() == 5 else 1):
            noise, deep = self.executor.run("unet-full", self._full_forward, latents, t, *cond)
            self._deep[call] = deep.clone()  # a CUDA graph's output buffer is rewritten by its next replay
            return noise
        return self.executor.run("unet-shallow", self._shallow_forward, latents, t, deep, *cond)

    def _full_forward(self, latents, t, hidden, *added):
        return full(self.unet, latents, t, hidden, added_kwargs(added))

    def _shallow_forward(self, latents, t, deep, hidden, *added):
        return shallow(self.unet, latents, t, hidden, deep, added_kwargs(added))

    def set_step_cache(self, interval: int) -> str:
        if interval < 1:
            raise GenaccelError(f"--cache-interval must be at least 1, got {interval}")
        self.cache_interval = interval
        return (f"step cache (DeepCache): the whole UNet every {interval} steps, the steps between run only "
                "conv_in, the first down-block and the last up-block on the cached deep feature")

    def _unet_forward(self, latents, t, hidden, *added):
        extra = {"added_cond_kwargs": added_kwargs(added)} if added else {}  # the 3-D UNet takes none
        return self.unet(latents, t, encoder_hidden_states=hidden, **extra, return_dict=False)[0]

    def vae_decode(self, latents: torch.Tensor) -> torch.Tensor:
        """VAE decode of (N, C, h, w) latents already divided by the scaling factor."""
        if self.channels_last:
            latents = latents.contiguous(memory_format=torch.channels_last)
        return self.executor.run("vae", self._vae_forward, latents)

    def _vae_forward(self, latents):
        return self.vae.decode(latents, return_dict=False)[0]

    # -- switches the optimizations call
    def set_attention(self, impl: str) -> str | None:
        if impl not in ("eager", "sdpa"):
            raise GenaccelError(f"attention {impl!r} is not offered by {self.name}; use eager or sdpa")
        if impl == "eager" and self.fused_qkv:
            raise GenaccelError("fused-qkv attends through SDPA; add sdpa to the stack")
        processor = {"eager": AttnProcessor, "sdpa": FusedAttnProcessor2_0 if self.fused_qkv else AttnProcessor2_0}[impl]
        unet_processor = self._unet_processor(processor()) if impl == "sdpa" else processor()
        self.unet.set_attn_processor(unet_processor)
        self.vae.set_attn_processor(processor())
        for encoder in self.text_encoders:
            encoder.set_attn_implementation(impl)
        self.attention = impl
        if impl == "sdpa" and unet_processor.native:
            return "the UNet's heads of 8 through genaccel's CPU kernel (genaccel_cpu.narrow_attention)"
        return None

    def fuse_qkv(self) -> str:
        self.fused_qkv = True
        for part in (self.unet, self.vae):
            part.fuse_qkv_projections()  # fused processors attend through SDPA
        self.unet.set_attn_processor(self._unet_processor(FusedAttnProcessor2_0()))
        self.attention = "sdpa"
        return "query, key and value projections fused into one linear (key and value for cross-attention)"

    def _unet_processor(self, sdpa):
        """The UNet's SDPA processor: :class:`~genaccel.diffusion.unet_attention.UNetAttention` over ``sdpa``
        (heads of 8 through genaccel's CPU kernel where it runs; a text-to-video UNet's text projected once per
        video in cross-attention)."""
        native = torch.device(self.device).type == "cpu" and narrow_heads(self.unet) and cpu_ops() is not None
        frames = self.frames if is_3d(self.unet) else 1
        return UNetAttention(sdpa, frames=frames, fused=self.fused_qkv, native=native)

    def set_channels_last(self) -> str:
        self.channels_last = True
        n = channels_last((self.unet, self.vae))
        return f"{n} Conv2d/Conv3d weights and the 4-D latents in channels-last (NHWC, NDHWC) layout"


