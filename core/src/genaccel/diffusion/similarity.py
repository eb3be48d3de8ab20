"""The analytical memory model of Golden et al. 2024 (Section V-B): the bytes of the similarity matrix
(QKᵀ, then its softmax) that attention materializes at each call of a UNet's forward.

The paper writes it for batch 1, one head and FP16: ``2·(H_L·W_L)·(H_L·W_L)`` for self-attention over the
latent's ``H_L×W_L`` positions and ``2·(H_L·W_L)·text_encode`` for cross-attention to the text, at stage ``n`` of
the UNet with ``H_L·W_L`` divided by ``d^{2n}`` (``d``: the down-sampling factor), summed over the down path,
the mid block and the up path.  Here every factor comes from the built model instead: each attention module of
the UNet, its stage (the down-samplers before it), its heads, the batch the denoising step runs (two rows under
classifier-free guidance, times the frames of a video), the text length and the dtype's bytes:
``batch · heads · Lq · Lk · bytes`` per call.  A temporal attention (video) attends over the frames at each
position: ``Lq = Lk = frames``, its batch the positions.
"""

from __future__ import annotations

import re

from ..engine.attention import find_attention_sites
from .loop import settings

#: the paper's ``d``: diffusers' Downsample2D/Upsample2D halve and double the latent's height and width
FACTOR = 2
_BLOCK = re.compile(r"\.(down_blocks|up_blocks)\.(\d+)\.|\.(mid_block)\.")


def _resamplers(blocks, attribute: str) -> list[bool]:
    return [getattr(b, attribute, None) is not None for b in blocks]


def stage_of(unet, name: str) -> int:
    """The stage ``n`` (down-samplings applied) at which the UNet's attention module ``name`` runs: a down
    block's index among the down-samplers before it, the mid block's all of them, an up block's all of them
    less the up-samplers before it; 0 outside the blocks (a UNet3D's input transformer)."""
    down = _resamplers(unet.down_blocks, "downsamplers")
    m = _BLOCK.search(name)
    if m is None:
        return 0
    if m.group(3):
        return sum(down)
    index = int(m.group(2))
    if m.group(1) == "down_blocks":
        return sum(down[:index])
    return sum(down) - sum(_resamplers(unet.up_blocks, "upsamplers")[:index])


def similarity_model(instance) -> dict:
    """The similarity matrices of one denoising step's UNet forward of a built latent-diffusion ``instance``
    (at its own image size): per call ``{module, kind, stage, batch, heads, query_len, key_len, bytes}``;
    ``largest_bytes`` (the largest one: what eager attention holds at once, beside its inputs) and
    ``total_bytes`` (their sum over the forward: the paper's cumulative formula)."""
    shape = instance.latent_shape(1)
    frames, positions = (shape[2] if len(shape) == 5 else 1), shape[-2] * shape[-1]
    rows = 2 if settings({}, instance.denoise_defaults).guidance_scale > 1 else 1  # guided: uncond and cond rows
    text = instance.tokenizer.model_max_length  # encode_prompt pads the prompt to it
    itemsize = instance.dtype.itemsize
    calls = []
    for site in find_attention_sites(instance.unet, "unet"):
        n = stage_of(instance.unet, site.name)
        at_stage = positions // FACTOR ** (2 * n)
        if site.kind == "temporal":
            kind, batch, lq, lk = "temporal", rows * at_stage, frames, frames
        else:
            cross = site.module.is_cross_attention
            kind, batch, lq, lk = ("cross" if cross else "spatial"), rows * frames, at_stage, text if cross else at_stage
        heads = site.module.heads
        calls.append({"module": site.name, "kind": kind, "stage": n, "batch": batch, "heads": heads,
                      "query_len": lq, "key_len": lk, "bytes": batch * heads * lq * lk * itemsize})
    sizes = [c["bytes"] for c in calls]
    return {"calls": calls, "largest_bytes": max(sizes, default=0), "total_bytes": sum(sizes)}
