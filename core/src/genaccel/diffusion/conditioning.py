"""What a latent-diffusion UNet is conditioned on, as the denoising loop carries it.

A workload's ``encode_prompt`` gives either the text encoder's hidden states (one tensor: Stable
Diffusion 1.x/2.x, the text-to-video UNets) or a tuple ``(hidden states, pooled text embeddings,
time ids)``: SDXL's UNet (``addition_embed_type="text_time"``) adds the pooled embeddings of its
second text encoder and the image's size and crop to its time embedding (``added_cond_kwargs``).
Every member is batched along its first dimension, so classifier-free guidance joins the
unconditional and conditional rows member by member.  The step executor takes flat tensors (a
CUDA graph copies each argument), hence :func:`flat` and :func:`added_kwargs`.
"""

from __future__ import annotations

import torch


def join(uncond, cond):
    """The unconditional rows, then the conditional ones, of a tensor or of each member of a tuple."""
    if isinstance(cond, tuple):
        return tuple(torch.cat([u, c]) for u, c in zip(uncond, cond))
    return torch.cat([uncond, cond])


def flat(embeddings) -> tuple:
    """The conditioning as the tuple of tensors the UNet's forward takes: hidden states first."""
    return embeddings if isinstance(embeddings, tuple) else (embeddings,)


def added_kwargs(added: tuple):
    """The UNet's ``added_cond_kwargs`` of the members after the hidden states (None without any)."""
    if not added:
        return None
    text_embeds, time_ids = added
    return {"text_embeds": text_embeds, "time_ids": time_ids}
