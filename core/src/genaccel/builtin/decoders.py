"""Built-in decoders: greedy, top-p, and transformers' own generate as a reference."""

from __future__ import annotations

import torch

from ..decoding import BatchResult, DecodeRun, generate, greedy_pick, loop_options, top_p_pick, with_media


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
        from transformers import GenerationConfig

        inst = ctx.instance
        run = DecodeRun(batch, **loop_options(ctx))  # transformers keeps its own cache
        config = GenerationConfig(max_new_tokens=run.steps, do_sample=False, eos_token_id=run.eos_id,
                                  pad_token_id=inst.pad_token_id)
        run.start()
        out = inst.model.hf.generate(input_ids=run.ids, attention_mask=run.valid.long(), generation_config=config)
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
        from ..beam import beam_search

        return with_media(ctx, batch, lambda b: beam_search(
            ctx.instance.model, b, num_beams=self.num_beams, length_penalty=self.length_penalty, **loop_options(ctx)))


class NonAutoregressive:
    """One forward per batch, no token loop.

    Calls ``ctx.instance.run_batch(batch)`` (role ``BatchRunner``), which returns ``{"outputs": [...], "records": [...],
    "phases": {name: seconds}, "model_s": seconds}``: per-sample outputs and extra fields, the time of
    each phase, and the model time (what the sample latency reports; phases outside it, such as an
    embedding lookup the study excludes, are reported apart).  A sample's units of work are what its
    record says (``units``; HSTU: its ranked or scored items), else one per sample.
    """

    def __init__(self, **options):
        self.options = options

    @torch.no_grad()
    def run(self, ctx, batch) -> BatchResult:
        result = ctx.instance.run_batch(batch)
        latency = result["model_s"]
        records = [
            {"id": s.id, **{f"input_{k}": v for k, v in s.input_lengths.items()}, "input_tokens": sum(s.input_lengths.values()),
             "output_tokens": len(out), "latency_s": latency, "ttft_s": None, "tpot_s": None,
             **extra}
            for s, out, extra in zip(batch, result["outputs"], result.get("records") or [{}] * len(batch))
        ]
        return BatchResult(records=records, outputs=result["outputs"], latency_s=latency, phases=result.get("phases", {}))
