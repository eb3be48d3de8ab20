"""Contrastive (classifier-free) guidance over a token model's logits.

Each step scores a conditional stream (the prompt) and an unconditional one (a prompt of its own
per sample), mixes them as ``u + s·(c − u)`` and picks the next token from the mix.  Batched, both
streams run in one forward of 2B rows; unbatched, a second forward per step runs the unconditional
stream over its own cache (the model's ``twin()``), as an implementation without batching does, so
the gain of batching can be measured.  Exactly ``max_new_tokens`` tokens are drawn (no stop token),
then ``eoi`` (Chameleon's end of image) is appended.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ..plugin.batch import BatchResult
from .decoding import DecodeRun


@torch.no_grad()
def guided_generate(model, batch: Sequence, unconditional: list[list[int]], *, scale: float,
                    pick: Callable[[torch.Tensor], torch.Tensor], eoi: int, twin=None, device, pad_id: int,
                    max_seq_len: int) -> BatchResult:
    """Guided generation of ``batch`` (``unconditional[i]``: sample i's unconditional prompt ids);
    ``twin``: the second step protocol of the unbatched form, None for the batched one."""
    frame = dict(device=device, pad_id=pad_id, max_seq_len=max_seq_len, eos_id=None)
    batched = twin is None
    run = DecodeRun(batch, **frame, models=(model,), rows=2 * len(batch)) if batched else \
        DecodeRun(batch, **frame, models=(model, twin))
    bsz, length = run.bsz, run.length
    # the unconditional prompts, left-padded to the conditional ones' length: one cache position for both
    u_ids = torch.full((bsz, length), pad_id, dtype=torch.long)
    u_valid = torch.zeros((bsz, length), dtype=torch.bool)
    for row, prompt in enumerate(unconditional):
        u_ids[row, length - len(prompt):] = torch.tensor(prompt)
        u_valid[row, length - len(prompt):] = True
    ids, valid, u_ids, u_valid = run.ids, run.valid, u_ids.to(device), u_valid.to(device)

    def guided(cond, uncond):  # in float32 or wider: masked logits stay finite, so they cancel
        wide = torch.promote_types(cond.dtype, torch.float32)
        cond, uncond = cond.to(wide), uncond.to(wide)
        return pick(uncond + scale * (cond - uncond))

    if batched:
        def prefill():
            return guided(*model.prefill(torch.cat([ids, u_ids]), torch.cat([valid, u_valid])).chunk(2))

        def decode(token, pos, kv_len):
            return guided(*model.decode(torch.cat([token, token]), pos, kv_len).chunk(2))
    else:
        def prefill():
            return guided(model.prefill(ids, valid), twin.prefill(u_ids, u_valid))

        def decode(token, pos, kv_len):
            return guided(model.decode(token, pos, kv_len), twin.decode(token, pos, kv_len))

    outputs = run.token_loop(prefill, decode)
    result = run.finish(
        outputs,
        decode_steps=run.steps - 1,
        kv_rows=2 * bsz,
        weight_passes=1 if batched else 2,  # per step: one forward of 2B rows, or two of B
        extra={"cfg": {"guidance_scale": scale, "batched": batched}},
    )
    for row in result.outputs:
        row.append(eoi)  # end of image, forced
    return result
