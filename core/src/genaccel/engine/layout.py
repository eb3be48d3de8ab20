"""Convolutions in oneDNN's preferred layout: channels-last (NHWC) for 2-D convolutions, channels-last-3d
(NDHWC) for 3-D ones, and 1-D convolutions run as their 2-D twins over (B, C, 1, L) channels-last tensors (NWC).

A video UNet's temporal Conv3d (kernel 3×1×1) reads its frames as (B, C, F, H, W), a permuted view of
channels-last (B·F, C, H, W) activations: that view already has NDHWC strides, so NDHWC weights let oneDNN
take it without a copy (Make-A-Video small, compiled, on a 2-core x86 CPU: a temporal block 4.8 against 6.6 ms
at 64 channels × 16×16).

On a 2-core x86 CPU a 256-channel dilated Conv1d over 10k frames takes ~30 ms channels-first and
~20 ms as NWC; both are exact (the same oneDNN arithmetic in another memory order)."""

from __future__ import annotations

import types

import torch
import torch.nn.functional as F
from torch import nn

#: the channels-last memory format of each convolution type's weights
_CHANNELS_LAST = {nn.Conv2d: torch.channels_last, nn.Conv3d: torch.channels_last_3d}


def channels_last(modules) -> int:
    """Every Conv2d (NHWC) and Conv3d (NDHWC) under ``modules`` (None entries skipped) in channels-last
    layout; how many."""
    n = 0
    for part in modules:
        for m in (part.modules() if part is not None else ()):
            for kind, fmt in _CHANNELS_LAST.items():
                if isinstance(m, kind):
                    m.to(memory_format=fmt)
                    n += 1
    return n


def _nwc_forward(self, x: torch.Tensor) -> torch.Tensor:
    """A Conv1d/ConvTranspose1d as its 2-D twin over a (B, C, 1, L) channels-last view of ``x``; the
    result is (B, C, L) in NWC strides, which the next such convolution takes without a copy."""
    x4 = x.unsqueeze(2)
    if not x4.is_contiguous(memory_format=torch.channels_last):
        x4 = x4.contiguous(memory_format=torch.channels_last)
    weight = self.weight.unsqueeze(2)
    stride, padding, dilation = (1, self.stride[0]), (0, self.padding[0]), (1, self.dilation[0])
    if isinstance(self, nn.ConvTranspose1d):
        y = F.conv_transpose2d(x4, weight, self.bias, stride, padding, (0, self.output_padding[0]), self.groups,
                               dilation)
    else:
        y = F.conv2d(x4, weight, self.bias, stride, padding, dilation, self.groups)
    return y.squeeze(2)


def conv1d_channels_last(module: nn.Module) -> int:
    """Every zero-padded Conv1d/ConvTranspose1d under ``module`` run as NWC (its parameters keep
    their names and shapes, so state dicts still load); how many.

    On a 2-core x86 CPU, SeamlessM4T v2's HiFi-GAN generator: 1.6-1.8x faster from 1,000 input
    frames (20 s of speech) up, even at ~300, and ~20% slower at 100 frames (2 s)."""
    n = 0
    for m in module.modules():
        if (isinstance(m, (nn.Conv1d, nn.ConvTranspose1d)) and m.padding_mode == "zeros"
                and not isinstance(m.padding, str)):
            with torch.no_grad():  # weights stored so that their 2-D view is channels-last too
                m.weight.data = m.weight.data.permute(0, 2, 1).contiguous().permute(0, 2, 1)
            m.forward = types.MethodType(_nwc_forward, m)
            n += 1
    return n
