"""Contrastive (classifier-free) guidance: the ``cfg`` and ``cfg-sequential`` decoders.

For a token model (capability ``cfg``, e.g. Chameleon's text → image) each step scores a
conditional stream (the prompt) and an unconditional one (the workload's
``unconditional_prompt(sample)``), mixes them as ``u + s·(c − u)`` and samples with temperature
and top-p; the model's logits are already restricted to the task's tokens by a device mask.
``cfg`` runs both streams in one forward of batch 2B; ``cfg-sequential`` runs a second forward
per step over its own cache (the model's ``twin()``), as an implementation without batching
does, so the gain of batching is measured.  Exactly ``max_new_tokens`` tokens are drawn, then
the workload's ``eoi`` (end of image) is appended.

For a ``Denoiser`` workload both decoders hand the batch to :func:`genaccel.denoise.denoise`,
batched or sequential alike.

The guidance scale is the decoder's option ``guidance_scale``, else the run's, else the
workload's ``guidance_scale``.
"""

from __future__ import annotations

import torch

from ..decoding import BatchResult, DecodeRun, loop_options, top_p_pick, with_media
from ..roles import Denoiser, GuidedLoop


class CFG:
    batched = True

    def __init__(self, guidance_scale: float | None = None, temperature: float = 0.6, top_p: float = 0.9,
                 scheduler: str | None = None, num_inference_steps: int | None = None, **options):
        self.guidance_scale, self.temperature, self.top_p = guidance_scale, temperature, top_p
        self.scheduler, self.num_inference_steps = scheduler, num_inference_steps  # read by the denoising loop
        self._generator = None
        self._twin = None

    def scale(self, ctx) -> float:
        scale = self.guidance_scale
        if scale is None:
            scale = ctx.config.options.get("guidance_scale")
        return float(ctx.instance.guidance_scale if scale is None else scale)

    def run(self, ctx, batch) -> BatchResult:
        if ctx.has(GuidedLoop):  # the workload's own loop (a cascade, parallel decoding)
            return ctx.instance.guided_run(ctx, batch, sequential=not self.batched)
        if ctx.has(Denoiser):
            from ..denoise import denoise

            return denoise(ctx, batch, sequential=not self.batched)
        return with_media(ctx, batch, lambda b: self.generate(ctx, b))

    @torch.no_grad()
    def generate(self, ctx, batch) -> BatchResult:
        inst, dev = ctx.instance, ctx.device
        if self._generator is None:
            self._generator = torch.Generator(device=dev).manual_seed(ctx.seed)
        pick = top_p_pick(self.temperature, self.top_p, self._generator)
        scale = self.scale(ctx)
        frame = dict(loop_options(ctx), eos_id=None)  # exactly max_new_tokens tokens: no stop token
        if self.batched:
            model = inst.model
            run = DecodeRun(batch, **frame, models=(model,), rows=2 * len(batch))
        else:
            if self._twin is None:  # a second stream over the same weights, settings and compiled steps' kind
                self._twin = inst.model.twin()
            cond, uncond = inst.model, self._twin
            run = DecodeRun(batch, **frame, models=(cond, uncond))
        bsz, length = run.bsz, run.length
        # the unconditional prompts, left-padded to the conditional ones' length: one cache position for both
        u_ids = torch.full((bsz, length), inst.pad_token_id, dtype=torch.long)
        u_valid = torch.zeros((bsz, length), dtype=torch.bool)
        for row, sample in enumerate(batch):
            prompt = inst.unconditional_prompt(sample)
            u_ids[row, length - len(prompt):] = torch.tensor(prompt)
            u_valid[row, length - len(prompt):] = True
        ids, valid, u_ids, u_valid = run.ids, run.valid, u_ids.to(dev), u_valid.to(dev)

        def guided(cond, uncond):  # in float32 or wider: masked logits stay finite, so they cancel
            wide = torch.promote_types(cond.dtype, torch.float32)
            cond, uncond = cond.to(wide), uncond.to(wide)
            return pick(uncond + scale * (cond - uncond))

        if self.batched:
            def prefill():
                return guided(*model.prefill(torch.cat([ids, u_ids]), torch.cat([valid, u_valid])).chunk(2))

            def decode(token, pos, kv_len):
                return guided(*model.decode(torch.cat([token, token]), pos, kv_len).chunk(2))
        else:
            def prefill():
                return guided(cond.prefill(ids, valid), uncond.prefill(u_ids, u_valid))

            def decode(token, pos, kv_len):
                return guided(cond.decode(token, pos, kv_len), uncond.decode(token, pos, kv_len))

        outputs = run.token_loop(prefill, decode)
        result = run.finish(
            outputs,
            decode_steps=run.steps - 1,
            kv_rows=2 * bsz,
            weight_passes=1 if self.batched else 2,  # per step: one forward of 2B rows, or two of B
            extra={"cfg": {"guidance_scale": scale, "batched": self.batched}},
        )
        for row in result.outputs:
            row.append(inst.eoi)  # end of image, forced
        return result


class SequentialCFG(CFG):
    batched = False
