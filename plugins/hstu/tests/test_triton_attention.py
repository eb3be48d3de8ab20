"""The Triton HSTU attention equals the PyTorch fused path, checked on CPU with Triton's
interpreter (TRITON_INTERPRET=1, set before triton is imported) at small sizes; on CUDA too
when a GPU is there."""

import os

import pytest
import torch

if not torch.cuda.is_available():  # read when the kernel is decorated, on first import of the module below
    os.environ["TRITON_INTERPRET"] = "1"
triton = pytest.importorskip("triton")

from genaccel_hstu import triton_attention as kernel  # noqa: E402
from genaccel_hstu.model import RelativeBias, fused_attention  # noqa: E402
from genaccel_hstu.testing import random_layout  # noqa: E402
from genaccel_hstu.triton_attention import available, triton_attention  # noqa: E402

INTERPRETED = type(getattr(kernel, "_hstu_attention_fwd", None)).__name__ == "InterpretedFunction"

MAX_LEN = 128


def _case(lengths, targets, dqk=8, dv=8, heads=2, device="cpu", dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    layout = random_layout(lengths, targets, g, device)
    total = int(layout.offsets[-1])
    q, k = (torch.randn(total, heads * dqk, generator=g).to(device, dtype) for _ in range(2))
    v = torch.randn(total, heads * dv, generator=g).to(device, dtype)
    bias = RelativeBias(MAX_LEN, 32)
    with torch.no_grad():
        bias.pos_w.normal_(0, 0.5, generator=g)
        bias.ts_w.normal_(0, 0.5, generator=g)
    return q, k, v, layout, bias.to(device, dtype), heads


@pytest.mark.skipif(not INTERPRETED, reason="needs Triton's interpreter (TRITON_INTERPRET=1 before the kernel's import)")
@pytest.mark.parametrize("lengths,targets,dqk,dv", [
    ([13, 1, 40, 0], [3, 0, 2, 0], 8, 8),  # jagged, empty and length-one sequences, candidates
    ([37], [0], 16, 8),  # no candidates, head dims that differ
    ([60, 20], [28, 5], 8, 24),  # a block of candidates only (skipped), a head dim not a power of two
])
def test_triton_equals_pytorch_fused_under_the_interpreter(lengths, targets, dqk, dv):
    q, k, v, layout, bias, heads = _case(lengths, targets, dqk, dv)
    want = fused_attention(q, k, v, layout, bias, heads, MAX_LEN, block=16)
    got = triton_attention(q, k, v, layout, bias, heads, MAX_LEN, block_m=16, block_n=16)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    assert available("cpu")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_triton_equals_pytorch_fused_on_cuda(dtype):
    q, k, v, layout, bias, heads = _case([700, 1, 300, 1100], [16, 0, 4, 16], 32, 32, device="cuda", dtype=dtype)
    want = fused_attention(q.float(), k.float(), v.float(), layout, bias.float(), heads, MAX_LEN)
    got = triton_attention(q, k, v, layout, bias, heads, MAX_LEN)
    tol = {"rtol": 1e-3, "atol": 1e-3} if dtype == torch.float32 else {"rtol": 3e-2, "atol": 3e-2}
    torch.testing.assert_close(got.float(), want, **tol)


@pytest.mark.skipif(not INTERPRETED, reason="needs Triton's interpreter (TRITON_INTERPRET=1 before the kernel's import)")
def test_whole_model_with_the_triton_kernel_equals_the_fused_path():
    from genaccel_hstu.model import HSTU, HSTUConfig

    torch.manual_seed(0)
    model = HSTU(HSTUConfig(dim=32, heads=2, qk_dim=16, v_dim=16, layers=2, full_layers=1, truncate_to=20,
                            max_len=MAX_LEN)).eval()
    _, _, _, layout, _, _ = _case([30, 12], [4, 2])
    x = torch.randn(42, 32)
    with torch.no_grad():
        model.attention = fused_attention
        want, _ = model(x, layout)
        model.attention = triton_attention
        got, _ = model(x, layout)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
