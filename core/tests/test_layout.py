"""1-D convolutions run as NWC 2-D convolutions: the same outputs, parameters and state-dict keys."""

import copy

import torch
from genaccel.engine.layout import channels_last, conv1d_channels_last
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


def test_channels_last_takes_conv2d_and_conv3d_and_keeps_outputs():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.Conv3d(8, 8, (3, 1, 1), padding=(1, 0, 0)))
    fast = copy.deepcopy(model)
    assert channels_last([fast, None]) == 2
    assert fast[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert fast[1].weight.is_contiguous(memory_format=torch.channels_last_3d)
    x = torch.randn(2, 4, 6, 6)
    with torch.no_grad():
        ref = model[1](model[0](x).unsqueeze(0).permute(0, 2, 1, 3, 4))
        out = fast[1](fast[0](x.contiguous(memory_format=torch.channels_last)).unsqueeze(0).permute(0, 2, 1, 3, 4))
    assert torch.allclose(out, ref, atol=1e-5)
