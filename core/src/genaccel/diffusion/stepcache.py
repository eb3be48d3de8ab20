"""DeepCache-style step cache for ``diffusers`` UNets (2-D and 3-D): lossy reuse of deep features.

Adjacent denoising steps change a UNet's deep features little.  Every ``interval``-th step (and
the first of each batch) runs the whole UNet and keeps the input of its last up-block (the output
of the deeper up-blocks, i.e. of everything below the shallowest skip branch); the steps between
run only the shallow path: time embedding, ``conv_in`` (and the 3-D UNet's ``transformer_in``),
the first down-block, then the last up-block on the cached deep feature and the fresh skip
features, and the output convolution.  Ma et al., *DeepCache: Accelerating Diffusion Models for
Free* (2023), skip branch 0.

:func:`full` and :func:`shallow` are pure functions of their tensors (the cache lives with the
caller), so the step executor compiles or graph-captures each as one computation.
"""

from __future__ import annotations

import torch
from diffusers import UNet3DConditionModel


def is_3d(unet) -> bool:
    """A text-to-video UNet (UNet3DConditionModel: temporal layers after conv_in)."""
    return isinstance(unet, UNet3DConditionModel)


def _embed(unet, sample, timestep, context, added):
    """Time embedding (plus SDXL's added text and time embedding, ``added``: the UNet's
    ``added_cond_kwargs`` or None), ``conv_in`` (+ the 3-D UNet's ``transformer_in``) and the frame
    layout, as the UNets' own forwards.  Returns (sample, emb, context, num_frames or None, the batch size)."""
    batch = sample.shape[0]
    timesteps = timestep
    if not torch.is_tensor(timesteps):
        timesteps = torch.tensor([timesteps], dtype=torch.int64, device=sample.device)
    elif timesteps.dim() == 0:
        timesteps = timesteps[None].to(sample.device)
    timesteps = timesteps.expand(batch)
    t_emb = unet.time_proj(timesteps).to(dtype=unet.dtype if is_3d(unet) else sample.dtype)
    emb = unet.time_embedding(t_emb, None)
    if added is not None:
        emb = emb + unet.get_aug_embed(emb=emb, encoder_hidden_states=context, added_cond_kwargs=added)
    frames = None
    if is_3d(unet):
        frames = sample.shape[2]
        emb = emb.repeat_interleave(frames, dim=0)
        context = context.repeat_interleave(frames, dim=0)
        sample = sample.permute(0, 2, 1, 3, 4).reshape((batch * frames, -1) + sample.shape[3:])
        sample = unet.conv_in(sample)
        sample = unet.transformer_in(sample, num_frames=frames, return_dict=False)[0]
    else:
        sample = unet.conv_in(sample)
    return sample, emb, context, frames, batch


def _frames(frames) -> dict:
    return {} if frames is None else {"num_frames": frames}


def _down(block, sample, emb, context, frames):
    if getattr(block, "has_cross_attention", False):
        return block(hidden_states=sample, temb=emb, encoder_hidden_states=context, **_frames(frames))
    return block(hidden_states=sample, temb=emb, **_frames(frames))


def _up(block, sample, emb, res, context, frames, upsample_size):
    if getattr(block, "has_cross_attention", False):
        return block(hidden_states=sample, temb=emb, res_hidden_states_tuple=res, encoder_hidden_states=context,
                     upsample_size=upsample_size, **_frames(frames))
    return block(hidden_states=sample, temb=emb, res_hidden_states_tuple=res, upsample_size=upsample_size,
                 **_frames(frames))


def _out(unet, sample, frames, batch):
    if unet.conv_norm_out is not None:
        sample = unet.conv_act(unet.conv_norm_out(sample))
    sample = unet.conv_out(sample)
    if frames is not None:
        sample = sample[None, :].reshape((batch, frames) + sample.shape[1:]).permute(0, 2, 1, 3, 4)
    return sample


def _needs_upsample_size(unet, sample) -> bool:
    factor = 2 ** unet.num_upsamplers
    return any(s % factor for s in sample.shape[-2:])


def full(unet, sample, timestep, context, added=None):
    """The whole UNet (equal to its own forward); returns (noise, the last up-block's input feature)."""
    forward_size = _needs_upsample_size(unet, sample)
    sample, emb, context, frames, batch = _embed(unet, sample, timestep, context, added)
    res_all = (sample,)
    for block in unet.down_blocks:
        sample, res = _down(block, sample, emb, context, frames)
        res_all += res
    if unet.mid_block is not None:
        if is_3d(unet):
            sample = unet.mid_block(sample, emb, encoder_hidden_states=context, num_frames=frames)
        else:
            sample = unet.mid_block(sample, emb, encoder_hidden_states=context)
    deep = None
    last = len(unet.up_blocks) - 1
    for i, block in enumerate(unet.up_blocks):
        n = len(block.resnets)
        res, res_all = res_all[-n:], res_all[:-n]
        size = res_all[-1].shape[2:] if i < last and forward_size else None
        if i == last:
            deep = sample
        sample = _up(block, sample, emb, res, context, frames, size)
    return _out(unet, sample, frames, batch), deep


def shallow(unet, sample, timestep, context, deep, added=None):
    """The shallow path on a cached deep feature: conv_in, the first down-block, the last up-block."""
    sample, emb, context, frames, batch = _embed(unet, sample, timestep, context, added)
    first = unet.down_blocks[0]
    _, res = _down(first, sample, emb, context, frames)
    skip = (sample,) + res
    if first.downsamplers is not None:  # the downsampled feature feeds only the deeper (cached) blocks
        skip = skip[:-1]
    block = unet.up_blocks[-1]
    res = skip[-len(block.resnets):]
    sample = _up(block, deep, emb, res, context, frames, None)
    return _out(unet, sample, frames, batch)
