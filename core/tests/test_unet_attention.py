"""genaccel's UNet attention processor equals diffusers' SDPA processors on the same module: self- and
cross-attention, fused or separate projections, heads of 8 through genaccel's CPU kernel or through SDPA."""

import pytest
import torch
from diffusers.models.attention_processor import Attention, AttnProcessor2_0, FusedAttnProcessor2_0
from genaccel.diffusion.unet_attention import UNetAttention, narrow_heads
from genaccel.engine.native import unavailable


@pytest.mark.parametrize("native", [False, pytest.param(True, marks=pytest.mark.skipif(
    unavailable() is not None, reason=f"no native kernels: {unavailable()}"))])
@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("cross,heads,head_dim", [(False, 4, 8), (True, 4, 8), (True, 2, 16)])
def test_equals_diffusers_sdpa_processor(native, fused, cross, heads, head_dim):
    torch.manual_seed(0)
    attn = Attention(32, cross_attention_dim=24 if cross else None, heads=heads, dim_head=head_dim).eval()
    assert narrow_heads(attn) == (head_dim == 8)
    hidden = torch.randn(3, 21, 32)
    context = torch.randn(3, 11, 24) if cross else None
    if fused:
        attn.fuse_projections()
    theirs = FusedAttnProcessor2_0() if fused else AttnProcessor2_0()
    with torch.no_grad():
        want = theirs(attn, hidden, context)
        got = UNetAttention(theirs, fused=fused, native=native)(attn, hidden, context)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_masked_calls_go_through_the_base_processor():
    calls = []

    def base(attn, hidden, *args, **kwargs):
        calls.append(hidden.shape)
        return hidden

    attn = Attention(16, heads=2, dim_head=8)
    hidden = torch.randn(1, 5, 16)
    assert UNetAttention(base, fused=False, native=False)(attn, hidden, None, torch.ones(1, 5, 5)) is hidden
    assert calls == [hidden.shape]
