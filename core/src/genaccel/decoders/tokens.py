"""The token decoders: greedy, top-p, beam search, and transformers' own ``generate`` as a reference."""

from __future__ import annotations

import torch
from transformers import GenerationConfig

from ..llm.beam import beam_search
from ..llm.decoding import DecodeRun, generate, greedy_pick, loop_options, top_p_pick, with_media
from ..plugin.batch import BatchResult


class Greedy:
    """argmax at every step."""

    def __init__(self, **options):
        self.options = options

    def picker(self, ctx):
        return greedy_pick

    def run(self, ctx, batch) -> BatchResult:
        pick = self.picker(ctx)
        return with_media(ctx, batch, lambda b: generate(ctx.instance.model, b, pick, **loop_options(ctx)))


class TopP(Greedy):
    """Temperature + nucleus sampling, seeded by the run."""

    def __init__(self, temperature: float = 0.6, top_p: float = 0.9, **options):
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        super().__init__(**options)
        self.temperature, self.top_p = temperature, top_p
        self._generator = None

    def picker(self, ctx):
        if self._generator is None:
            self._generator = torch.Generator(device=ctx.device).manual_seed(ctx.seed)
        return top_p_pick(self.temperature, self.top_p, self._generator)


class HFGenerate:
    """transformers' ``generate`` (greedy, its default attention and dynamic cache): the
    reference that genaccel's own loop is measured against, on the same weights."""

    def __init__(self, **options):
        self.options = options

    def run(self, ctx, batch) -> BatchResult:
        return with_media(ctx, batch, lambda b: self._generate(ctx, b))

    @torch.no_grad()
    def _generate(self, ctx, batch) -> BatchResult:
        inst = ctx.instance
        run = DecodeRun(batch, **loop_options(ctx))  # transformers keeps its own cache
        config = GenerationConfig(max_new_tokens=run.steps, do_sample=False, eos_token_id=run.eos_id,
                                  pad_token_id=inst.pad_token_id)
        run.start()
        out = inst.hf_generate(run.ids, run.valid.long(), config)
        run.mark()
        ran = out.shape[1] - run.length
        return run.finish(out[:, run.length :].tolist(), decode_steps=max(ran - 1, 0), kv_rows=len(batch),
                          per_token=False)


class Beam:
    """Beam search (5 beams, length penalty 1.0, as transformers' and fairseq's defaults)."""

    def __init__(self, num_beams: int = 5, length_penalty: float = 1.0, **options):
        if num_beams < 1:
            raise ValueError(f"num_beams must be >= 1, got {num_beams}")
        self.num_beams, self.length_penalty = num_beams, length_penalty

    def run(self, ctx, batch) -> BatchResult:
        return with_media(ctx, batch, lambda b: beam_search(
            ctx.instance.model, b, num_beams=self.num_beams, length_penalty=self.length_penalty, **loop_options(ctx)))
