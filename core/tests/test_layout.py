"""1-D convolutions run as NWC 2-D convolutions: the same outputs, parameters and state-dict keys."""

import copy

import torch
from genaccel.engine.layout import conv1d_channels_last
from torch import nn


def _stack():
    return nn.Sequential(
        nn.Conv1d(6, 8, 7, padding=3),
        nn.LeakyReLU(0.1),
        nn.ConvTranspose1d(8, 4, 11, stride=5, padding=3),
        nn.Conv1d(4, 4, 3, dilation=3, padding=3, groups=2),
        nn.ConvTranspose1d(4, 2, 4, stride=2, padding=1, output_padding=1),
        nn.Conv1d(2, 1, 5, stride=2, padding=2, bias=False),
        nn.Tanh(),
    )


def test_conv1d_channels_last_is_exact_and_keeps_parameters():
    torch.manual_seed(0)
    ref = _stack()
    nwc = copy.deepcopy(ref)
    assert conv1d_channels_last(nwc) == 5
    x = torch.randn(3, 6, 37)
    with torch.no_grad():
        want, got = ref(x), nwc(x)
    assert got.shape == want.shape and torch.allclose(got, want, atol=1e-6)
    assert list(nwc.state_dict()) == list(ref.state_dict())
    assert nwc[0].weight.unsqueeze(2).is_contiguous(memory_format=torch.channels_last)
    nwc.load_state_dict({k: v * 2 for k, v in ref.state_dict().items()})  # weights loaded later are used
    ref.load_state_dict(nwc.state_dict())
    with torch.no_grad():
        assert torch.allclose(nwc(x), ref(x), atol=1e-6)


def test_a_conv_padded_otherwise_is_left_alone():
    conv = nn.Conv1d(2, 2, 3, padding=1, padding_mode="reflect")
    assert conv1d_channels_last(conv) == 0
