"""What Parti samples each image token with: classifier-free guidance over the logits (Sec. 2.4, Eq. 1) and top-k
sampling, both on the device (no host sync per token, so a decode loop can run ahead of the device or replay a
CUDA graph).

Guidance mixes the conditional logits ``c`` (the prompt) with the unconditional ones ``u`` (the empty prompt):
``u + λ·(c − u)``; λ = 1 is plain conditional sampling, Parti reports λ = 1.2.  Masked logits (the dtype's minimum
on both sides) cancel in the difference, so they stay masked when the mix is taken in float32 or wider.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def guided_logits(cond: torch.Tensor, uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """``uncond + scale · (cond − uncond)`` in float32 or wider."""
    wide = torch.promote_types(cond.dtype, torch.float32)
    cond, uncond = cond.to(wide), uncond.to(wide)
    return uncond + scale * (cond - uncond)


def split_guided(logits: torch.Tensor, scale: float) -> torch.Tensor:
    """Guidance of one forward over 2B rows: the first B conditional, the last B unconditional."""
    cond, uncond = logits.chunk(2)
    return guided_logits(cond, uncond, scale)


def top_k_probs(logits: torch.Tensor, k: int, temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` largest logits of each row as a distribution: (probabilities (…, k), their token ids (…, k))."""
    if not 1 <= k <= logits.shape[-1]:
        raise ValueError(f"top-k sampling needs 1 <= k <= {logits.shape[-1]} (the vocabulary), got k={k}")
    if temperature <= 0:
        raise ValueError(f"the sampling temperature must be positive, got {temperature}")
    values, ids = logits.topk(k, dim=-1)
    return torch.softmax(values.float() / temperature, dim=-1), ids


def top_k_sample(logits: torch.Tensor, k: int, generator: torch.Generator, temperature: float = 1.0) -> torch.Tensor:
    """One token id per row of (…, V) logits, drawn from the top ``k`` after ``temperature``, on the device.

    The draw is an exponential race, argmax(p / E) with E ~ Exp(1) drawn from ``generator``: it picks index i with
    probability p_i, needs no normalization and no host sync, and keeps fixed shapes (CUDA-graph friendly).
    """
    probs, ids = top_k_probs(logits, k, temperature)
    race = torch.empty_like(probs).exponential_(1.0, generator=generator)
    return ids.gather(-1, (probs / race).argmax(dim=-1, keepdim=True)).squeeze(-1)


def top_k_pick(k: int, generator: torch.Generator, temperature: float = 1.0,
               guidance_scale: float | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """A picker for a decode loop: logits → token ids.  With ``guidance_scale`` it takes the 2B rows of one guided
    forward (conditional first) and returns B ids."""
    if not 1 <= k:
        raise ValueError(f"top-k sampling needs k >= 1, got {k}")

    def pick(logits: torch.Tensor) -> torch.Tensor:
        if guidance_scale is not None:
            logits = split_guided(logits, guidance_scale)
        return top_k_sample(logits, k, generator, temperature)

    return pick
