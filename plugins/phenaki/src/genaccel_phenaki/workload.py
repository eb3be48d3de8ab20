"""Phenaki's text-to-video on the core's parallel-decoding loop (role MaskedTokens), as the paper runs it:

1. the prompt through the frozen T5 encoder (phase ``text encoder``), padded to the preset's fixed length with
   its mask; with guidance also the empty prompt;
2. the video's tokens, (1 + k)·g·g of them in raster order over time, rows and columns, all [MASK]; per step
   (phase ``decode``) the MaskGIT transformer predicts logits for every position (one forward of 2B rows with
   ``cfg``, two of B with ``cfg-sequential``), guided ``u + s·(c − u)``, and ``AmusedScheduler.step`` samples
   the masked positions and re-masks the least confident along MaskGIT's cosine schedule, its Gumbel
   temperature annealed linearly to 0 (tokens (B, L) and logits (B, L, V): the scheduler's 1-D path);
3. the tokens through C-ViViT's decoder (phase ``c-vivit decode``), saved as an animated GIF and PNG frames.

The transformer step and the C-ViViT decode run through one :class:`StepExecutor` (``compile``,
``cuda-graph``); every step has the same shapes.
"""

from __future__ import annotations

import torch
from genaccel.api import (
    CompiledSteps,
    GenaccelError,
    Prompted,
    StepExecutor,
    find_attention_sites,
    parameters,
    save_videos,
)

from .build import PhenakiModules
from .config import ATTENTION


class Phenaki(Prompted, CompiledSteps):
    """Text → a video of ``frames`` frames per prompt (``phenaki/t-v``)."""

    compiled_steps = "the MaskGIT step and the C-ViViT decode (static shapes)"
    decode_phase = "c-vivit decode"
    period_options = {"num_inference_steps": 1}  # AttentionRecord: one parallel-decoding step

    def __init__(self, *, modules: PhenakiModules, tokenizer, frames: int, device: str, random_weights: bool,
                 name: str, data=None):
        self.modules, self.tokenizer, self.frames = modules, tokenizer, frames
        self.preset = preset = modules.preset
        self.text_encoder, self.maskgit, self.cvivit = modules.text_encoder, modules.maskgit, modules.cvivit
        self.token_grid = preset.cvivit.token_shape(frames)
        self.scheduler_config = {"_class_name": "AmusedScheduler", "masking_schedule": "cosine",
                                 "mask_token_id": preset.maskgit.mask_token_id}
        self.decode_defaults = {"num_inference_steps": preset.steps, "guidance_scale": preset.guidance_scale}
        self.device, self.random_weights, self.name, self.data = device, random_weights, name, data
        self.module = torch.nn.ModuleDict({"text_encoder": modules.text_encoder, "maskgit": modules.maskgit,
                                           "cvivit": modules.cvivit}).eval()
        self.executor = StepExecutor(device)
        self.attention = "eager"
        self.set_attention("eager")

    # -- AttentionRecord

    def attention_sites(self) -> list:
        """MaskGIT's attention, ``self`` over every video token (masked or not) and ``cross`` to the T5 embeddings;
        then C-ViViT's decoder, ``temporal`` across time steps and ``spatial`` within each.  The frozen T5 encoder is
        left out (Phenaki reads precomputed T5X embeddings), as is C-ViViT's encoder (text-to-video never runs it)."""
        return (find_attention_sites(self.maskgit, "maskgit")
                + self.cvivit.decoder.transformer.attention_sites("cvivit.decoder.transformer"))

    # -- Workload

    @property
    def units_per_sample(self) -> int:
        return self.frames

    @property
    def tokens(self) -> int:
        t, h, w = self.token_grid
        return t * h * w

    def describe(self) -> dict:
        counts = self.modules.parameter_counts()
        return {"name": self.name, "parameters": parameters(self.module), "maskgit_parameters": counts["maskgit"],
                "cvivit_parameters": counts["cvivit"], "text_encoder_parameters": counts["text_encoder"],
                "frames": self.frames, "image_size": self.preset.cvivit.image_size, "tokens": self.tokens,
                "token_shape": list(self.token_grid), "text_length": self.preset.text_length,
                "temperature": self.preset.temperature, "guidance_weight": self.preset.guidance_weight,
                "attention": self.attention, "executor": self.executor.mode, **self.decode_defaults}

    # -- MaskedTokens: the core's parallel decoding drives these

    def temperatures(self, steps: int) -> tuple[float, float]:
        """MaskGIT's choice temperature ``T·(1 − (i + 1)/steps)`` at step ``i`` (Phenaki: T = 8): the scheduler
        interpolates (start, end) linearly over the steps, so start ``T·(1 − 1/steps)``, end 0."""
        start = self.preset.temperature
        return (start * (1.0 - 1.0 / steps), 0.0)

    def tokens_shape(self, batch_size: int) -> tuple[int, int]:
        """Flat (B, L): the scheduler's 1-D path; MaskGIT reads positions in raster order."""
        return (batch_size, self.tokens)

    def encode_prompt(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """T5 embeddings (B, text_length, d) of the prompts padded to the preset's length, and their mask."""
        enc = self.tokenizer(prompts, padding="max_length", max_length=self.preset.text_length, truncation=True,
                             return_tensors="pt")
        ids, mask = enc.input_ids.to(self.device), enc.attention_mask.to(self.device)
        return self.text_encoder(input_ids=ids, attention_mask=mask).last_hidden_state, mask

    def token_logits(self, tokens, text, text_mask):
        """Logits (B, L, codebook) of every position, through the step executor."""
        return self.executor.run("maskgit", self.maskgit, tokens, text, text_mask)

    def decode_tokens(self, tokens) -> torch.Tensor:
        """Videos (B, F, H, W, 3) in [0, 1], float32 on the CPU: C-ViViT's decoder over the token grid, its
        output read as pixels in [-1, 1]."""
        grid = tokens.reshape(tokens.shape[0], *self.token_grid)
        video = self.executor.run("cvivit", self.cvivit.decode, grid)
        return (video / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 4, 1).float().cpu()

    def save_outputs(self, batch, videos, out_dir) -> list[dict]:
        return save_videos(batch, videos, out_dir)

    # -- switches the optimizations call

    def set_attention(self, impl: str) -> None:
        """Every attention of MaskGIT, C-ViViT and the T5 encoder to ``eager`` or ``sdpa``."""
        if impl not in ATTENTION:
            raise GenaccelError(f"attention {impl!r} is not offered by {self.name}; use eager or sdpa")
        self.modules.set_attention(impl)
        self.attention = impl
