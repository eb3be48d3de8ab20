"""Contrastive (classifier-free) guidance for text → image: the ``cfg`` decoders.

Each step scores a conditional stream (the prompt) and an unconditional one (the prompt's
text dropped), mixes them as ``u + s·(c − u)`` and samples with temperature and top-p; the
model's logits are already restricted to image tokens by a device mask.  ``cfg`` runs both
streams in one forward of batch 2B; ``cfg-sequential`` runs a second forward per step over
its own cache, as an implementation without batching does, so the gain of batching is measured.
Exactly ``grid²`` tokens are drawn, then end-of-image is forced.
"""

from __future__ import annotations

import torch
from genaccel.decoding import BatchResult, padded_prompts, sample_records, top_p_pick, with_media
from genaccel.measure import StepClock
from genaccel.profiling import phase


class CFG:
    batched = True

    def __init__(self, temperature: float = 0.6, top_p: float = 0.9, **options):
        self.temperature, self.top_p = temperature, top_p
        self._generator = None
        self._twin = None

    def run(self, ctx, batch) -> BatchResult:
        return with_media(ctx, batch, lambda b: self.generate(ctx, b))

    @torch.no_grad()
    def generate(self, ctx, batch) -> BatchResult:
        inst, dev = ctx.instance, ctx.device
        if self._generator is None:
            self._generator = torch.Generator(device=dev).manual_seed(ctx.seed)
        pick = top_p_pick(self.temperature, self.top_p, self._generator)
        scale = inst.guidance_scale
        ids, valid, steps = padded_prompts(batch, inst.pad_token_id, dev, ctx.max_seq_len)
        bsz, length = ids.shape
        # the unconditional prompts, left-padded to the conditional ones' length: one cache position for both
        u_ids = torch.full((bsz, length), inst.pad_token_id, dtype=torch.long)
        u_valid = torch.zeros((bsz, length), dtype=torch.bool)
        for row, sample in enumerate(batch):
            prompt = inst.unconditional_prompt(sample)
            u_ids[row, length - len(prompt):] = torch.tensor(prompt)
            u_valid[row, length - len(prompt):] = True
        u_ids, u_valid = u_ids.to(dev), u_valid.to(dev)

        def guided(cond, uncond):  # in float32 or wider: masked logits stay finite, so they cancel
            wide = torch.promote_types(cond.dtype, torch.float32)
            cond, uncond = cond.to(wide), uncond.to(wide)
            return pick(uncond + scale * (cond - uncond))

        if self.batched:
            model = inst.model
            model.setup(2 * bsz, ctx.max_seq_len)

            def prefill():
                return guided(*model.prefill(torch.cat([ids, u_ids]), torch.cat([valid, u_valid])).chunk(2))

            def decode(token, pos, kv_len):
                return guided(*model.decode(torch.cat([token, token]), pos, kv_len).chunk(2))
        else:
            if self._twin is None:  # a second stream over the same weights, settings and compiled steps' kind
                self._twin = inst.model.twin()
            cond, uncond = inst.model, self._twin
            cond.setup(bsz, ctx.max_seq_len)
            uncond.setup(bsz, ctx.max_seq_len)

            def prefill():
                return guided(cond.prefill(ids, valid), uncond.prefill(u_ids, u_valid))

            def decode(token, pos, kv_len):
                return guided(cond.decode(token, pos, kv_len), uncond.decode(token, pos, kv_len))

        out = torch.zeros((bsz, steps), dtype=torch.long, device=dev)
        pos = torch.tensor(length, dtype=torch.long, device=dev)
        clock = StepClock(dev)
        clock.start()
        with phase("prefill"):
            token = prefill()
            out[:, 0] = token
        clock.mark()
        for step in range(1, steps):
            with phase("decode"):
                token = decode(token, pos, length + step)
                out[:, step] = token
                pos += 1
            clock.mark()
        times = clock.seconds()
        outputs = out.tolist()
        records = sample_records(batch, outputs, times, None)
        for row in outputs:
            row.append(inst.eoi)  # end of image, forced
        return BatchResult.from_clock(
            times,
            records=records,
            outputs=outputs,
            decode_steps=steps - 1,
            weight_passes=1 if self.batched else 2,  # per step: one forward of 2B rows, or two of B
            kv_tokens_read=2 * bsz * sum(length + i for i in range(1, steps)),
            extra={"cfg": {"guidance_scale": scale, "batched": self.batched}},
        )


class SequentialCFG(CFG):
    batched = False
