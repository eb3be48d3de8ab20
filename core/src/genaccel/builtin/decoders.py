"""Built-in decoders: greedy, top-p, and transformers' own generate as a reference."""

from __future__ import annotations

import torch

from ..decoding import BatchResult, generate, greedy_pick, pad_left, stop_token, top_p_pick, with_media
from ..measure import synced_now


class Greedy:
    def __init__(self, **options):
        self.options = options

    def picker(self, ctx):
        return greedy_pick

    def run(self, ctx, batch) -> BatchResult:
        inst = ctx.instance
        return with_media(ctx, batch, lambda b: generate(
            inst.model,
            b,
            self.picker(ctx),
            device=ctx.device,
            pad_id=inst.pad_token_id,
            max_seq_len=ctx.max_seq_len,
            eos_id=stop_token(inst),
        ))


class TopP(Greedy):
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
        hf = inst.model.hf
        ids, valid = pad_left(batch, inst.pad_token_id, ctx.device)
        steps = max(s.max_new_tokens for s in batch)
        eos = stop_token(inst)
        config = GenerationConfig(
            max_new_tokens=steps, do_sample=False, eos_token_id=eos, pad_token_id=inst.pad_token_id
        )
        t0 = synced_now(ctx.device)
        out = hf.generate(input_ids=ids, attention_mask=valid.long(), generation_config=config)
        latency = synced_now(ctx.device) - t0
        length = ids.shape[1]
        outputs, records = [], []
        for row, sample in enumerate(batch):
            toks = out[row, length:].tolist()[: sample.max_new_tokens]
            if eos is not None and eos in toks:
                toks = toks[: toks.index(eos) + 1]
            outputs.append(toks)
            records.append(
                {
                    "id": sample.id,
                    "input_tokens": len(sample.input_ids),
                    "output_tokens": len(toks),
                    "latency_s": latency,
                    "ttft_s": None,
                    "tpot_s": None,
                }
            )
        ran = out.shape[1] - length
        return BatchResult(
            records=records,
            outputs=outputs,
            latency_s=latency,
            decode_steps=max(ran - 1, 0),
            kv_tokens_read=len(batch) * sum(length + i for i in range(1, ran)),
        )


class Beam:
    """Beam search (5 beams, length penalty 1.0, as transformers' and fairseq's defaults)."""

    def __init__(self, num_beams: int = 5, length_penalty: float = 1.0, **options):
        if num_beams < 1:
            raise ValueError(f"num_beams must be >= 1, got {num_beams}")
        self.num_beams, self.length_penalty = num_beams, length_penalty

    def run(self, ctx, batch) -> BatchResult:
        from ..beam import beam_search

        inst = ctx.instance
        return with_media(ctx, batch, lambda b: beam_search(
            inst.model, b, num_beams=self.num_beams, length_penalty=self.length_penalty, device=ctx.device,
            pad_id=inst.pad_token_id, max_seq_len=ctx.max_seq_len, eos_id=stop_token(inst),
        ))


class NonAutoregressive:
    """One forward per batch, no token loop.

    Calls ``ctx.instance.run_batch(batch)``, which returns ``{"outputs": [...], "records": [...],
    "phases": {name: seconds}, "model_s": seconds}``: per-sample outputs and extra fields, the time of
    each phase, and the model time (what the sample latency reports; phases outside it, such as an
    embedding lookup the study excludes, are reported apart).
    """

    def __init__(self, **options):
        self.options = options

    @torch.no_grad()
    def run(self, ctx, batch) -> BatchResult:
        result = ctx.instance.run_batch(batch)
        latency = result["model_s"]
        records = [
            {"id": s.id, **{f"input_{k}": v for k, v in s.input_lengths.items()}, "input_tokens": sum(s.input_lengths.values()),
             "output_tokens": len(out), "latency_s": latency, "ttft_s": None, "tpot_s": None, **extra}
            for s, out, extra in zip(batch, result["outputs"], result.get("records") or [{}] * len(batch))
        ]
        return BatchResult(records=records, outputs=result["outputs"], latency_s=latency, phases=result.get("phases", {}))
