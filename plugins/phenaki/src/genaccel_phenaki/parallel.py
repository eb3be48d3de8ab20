"""The pieces of MaskGIT's parallel decoding as Phenaki uses them (Sec. 2.2: "the masking schedule and the
sampling schedule ... we follow the same strategy" as MaskGIT), with no loop of their own: the loop that calls
them is shared with Muse and lives with the caller.

- ``masked_counts``: how many tokens stay masked after each step, MaskGIT's cosine schedule
  ``γ(r) = cos(π/2 · r)`` at ``r = (step + 1) / steps``, never more than one fewer than before, at least one
  until the last step, none after it (diffusers' ``AmusedScheduler`` counts the same way);
- ``choice_temperature``: MaskGIT's Gumbel-noise temperature, annealed linearly to 0 (Phenaki: 4.0 or 8.0);
- ``sample_and_remask``: sample every masked position from the logits, keep the known tokens, and re-mask the
  ``n`` least confident new ones (log-probability of the sampled code plus temperature-scaled Gumbel noise);
- ``guide``: classifier-free guidance on logits, ``u + s·(c − u)``.  Phenaki gives its weight λ without the
  formula (λ = 12 for the paper's videos, 0.1 against NUWA); 0.1 only makes sense as ``c + λ·(c − u)``, i.e.
  ``s = 1 + λ`` (``phenaki_guidance_scale``).
"""

from __future__ import annotations

import math

import torch


def masked_counts(total: int, steps: int) -> list[int]:
    """Tokens still masked after each of ``steps`` steps of a ``total``-token grid that starts fully masked.
    The ratio is taken in float32, as MaskGIT (JAX) and diffusers compute it, so that exact boundaries round the
    same way (192 tokens at cos(π/3): 95, not 96)."""
    if steps < 1 or total < 1:
        raise ValueError(f"parallel decoding needs at least one step and one token; got {steps} steps, {total} tokens")
    progress = (torch.arange(steps, dtype=torch.long) + 1) / steps
    left = (total * torch.cos(progress * math.pi / 2)).floor().long().tolist()
    counts, masked = [], total
    for step in range(steps):
        masked = 0 if step == steps - 1 else max(1, min(masked - 1, left[step]))
        counts.append(masked)
    return counts


def choice_temperature(step: int, steps: int, start: float) -> float:
    """MaskGIT's annealed temperature of the re-masking noise at ``step``: ``start · (1 − (step + 1) / steps)``."""
    return start * (1.0 - (step + 1) / steps)


def gumbel(shape, *, generator: torch.Generator | None, device) -> torch.Tensor:
    """Standard Gumbel noise, drawn on the generator's device and moved to ``device``."""
    where = generator.device if generator is not None else device
    u = torch.rand(shape, generator=generator, device=where).to(device)
    return -torch.log((-torch.log(u.clamp_min(1e-20))).clamp_min(1e-20))


def sample_and_remask(tokens: torch.Tensor, logits: torch.Tensor, n_masked: int, *, temperature: float,
                      mask_token_id: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """One MaskGIT step on flat tokens (B, L) with logits (B, L, V): sample the masked positions, then re-mask
    exactly ``n_masked`` of the newly sampled ones, the least confident; known tokens are never re-masked."""
    batch, length = tokens.shape
    unknown = tokens == mask_token_id
    if n_masked > int(unknown.sum(dim=1).min()):
        raise ValueError(f"cannot leave {n_masked} tokens masked: only {int(unknown.sum(dim=1).min())} are masked")
    probs = logits.float().softmax(dim=-1)
    draw_on = generator.device if generator is not None else probs.device
    sampled = torch.multinomial(probs.reshape(batch * length, -1).to(draw_on), 1, generator=generator)
    sampled = torch.where(unknown, sampled.reshape(batch, length).to(tokens.device), tokens)
    if n_masked == 0:
        return sampled
    chosen = probs.gather(-1, sampled[..., None])[..., 0]
    noise = gumbel(chosen.shape, generator=generator, device=chosen.device)
    confidence = torch.log(chosen.clamp_min(1e-20)) + temperature * noise
    confidence = torch.where(unknown, confidence, torch.full_like(confidence, math.inf))
    remask = confidence.topk(n_masked, dim=1, largest=False).indices
    return sampled.scatter(1, remask, mask_token_id)


def guide(cond: torch.Tensor, uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance on logits: ``uncond + scale · (cond − uncond)`` (scale 1: the conditional)."""
    return uncond + scale * (cond - uncond)


def phenaki_guidance_scale(lam: float) -> float:
    """Phenaki's guidance weight λ, read as logits ``c + λ·(c − u)``, as the ``scale`` of ``guide``."""
    return 1.0 + lam
