"""Contrastive (classifier-free) guidance over a token model's logits.

Each step scores a conditional stream (the prompt) and an unconditional one (a prompt of its own
per sample, or, for an encoder-decoder, the same decoder prompt over the empty prompt's encoder
states), mixes them as ``u + s·(c − u)`` and picks the next token from the mix.  Batched, both
streams run in one forward of 2B rows; unbatched, a second forward per step runs the unconditional
stream over its own cache (the model's ``twin()``), as an implementation without batching does, so
the gain of batching can be measured.  The model's ``guidance_streams(twin)`` gives each stream its
conditioning.  Exactly ``max_new_tokens`` tokens are drawn (no stop token), then ``eoi`` (Chameleon's
end of image), when there is one, is appended.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ..plugin.batch import BatchResult
from .decoding import DecodeRun


def guided_logits(cond: torch.Tensor, uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """``uncond + scale · (cond − uncond)`` in float32 or wider: masked logits (the dtype's minimum on
    both sides) stay finite, so they cancel in the difference and stay masked."""
    wide = torch.promote_types(cond.dtype, torch.float32)
    cond, uncond = cond.to(wide), uncond.to(wide)
    return uncond + scale * (cond - uncond)


def left_padded(prompts: list[list[int]], length: int, pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """The unconditional prompts left-padded to the conditional ones' ``length``: one cache position for both."""
    ids = torch.full((len(prompts), length), pad_id, dtype=torch.long)
    valid = torch.zeros((len(prompts), length), dtype=torch.bool)
    for row, prompt in enumerate(prompts):
        ids[row, length - len(prompt):] = torch.tensor(prompt)
        valid[row, length - len(prompt):] = True
    return ids.to(device), valid.to(device)


@torch.no_grad()
def guided_generate(model, batch: Sequence, unconditional: list[list[int]], *, scale: float,
                    pick: Callable[[torch.Tensor], torch.Tensor], eoi: int | None, twin=None, device, pad_id: int,
                    max_seq_len: int) -> BatchResult:
    """Guided generation of ``batch`` (``unconditional[i]``: sample i's unconditional prompt ids);
    ``twin``: the second step protocol of the unbatched form, None for the batched one."""
    frame = dict(device=device, pad_id=pad_id, max_seq_len=max_seq_len, eos_id=None)
    batched = twin is None
    model.guidance_streams(twin)
    run = DecodeRun(batch, **frame, models=(model,), rows=2 * len(batch)) if batched else \
        DecodeRun(batch, **frame, models=(model, twin))
    ids, valid = run.ids, run.valid
    u_ids, u_valid = left_padded(unconditional, run.length, pad_id, device)

    def guided(cond, uncond):
        return pick(guided_logits(cond, uncond, scale))

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
        kv_rows=2 * run.bsz,
        weight_passes=1 if batched else 2,  # per step: one forward of 2B rows, or two of B
        extra={"cfg": {"guidance_scale": scale, "batched": batched}},
    )
    if eoi is not None:
        for row in result.outputs:
            row.append(eoi)  # end of image, forced
    return result
