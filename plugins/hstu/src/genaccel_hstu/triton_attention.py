"""HSTU's fused attention as a Triton kernel (CUDA; on CPU under Triton's interpreter,
``TRITON_INTERPRET=1``, for tests).

The same computation as :func:`genaccel_hstu.model.fused_attention`: one program per (query block,
sequence, head) over the sequence's real length, the relative bias (position and time bucket)
gathered per block inside the loop, ``SiLU(q kᵀ + rab) / N`` masked (causal; a candidate sees the
history and itself) and multiplied into ``v`` — no padding, no N×N tensor.  Key blocks past the
query block are never visited and blocks of candidates only, before the query block, are skipped.
"""

from __future__ import annotations

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # the PyTorch fused path serves without it
    triton = None


def available(device: str | torch.device) -> bool:
    """Whether the kernel can run on ``device``: Triton importable, and a CUDA device (or its interpreter)."""
    import os

    if triton is None:
        return False
    return torch.device(device).type == "cuda" or os.environ.get("TRITON_INTERPRET") == "1"


if triton is not None:

    @triton.jit
    def _hstu_attention_fwd(
        Q, K, V, Out, offsets, ts, next_ts, num_targets, pos_w, ts_w,
        stride_q, stride_k, stride_v, stride_o, max_len, num_buckets, inv_n,
        H: tl.constexpr, DQK: tl.constexpr, DV: tl.constexpr, DQK_P: tl.constexpr, DV_P: tl.constexpr,
        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    ):
        pid_m = tl.program_id(0)
        pid_bh = tl.program_id(1)
        b = pid_bh // H
        h = pid_bh % H
        start = tl.load(offsets + b)
        n = (tl.load(offsets + b + 1) - start).to(tl.int32)
        q0 = pid_m * BLOCK_M
        if q0 < n:
            history = n - tl.load(num_targets + b).to(tl.int32)
            offs_m = q0 + tl.arange(0, BLOCK_M)
            m_mask = offs_m < n
            offs_dqk = tl.arange(0, DQK_P)
            offs_dv = tl.arange(0, DV_P)
            q = tl.load(Q + (start + offs_m)[:, None] * stride_q + h * DQK + offs_dqk[None, :],
                        mask=m_mask[:, None] & (offs_dqk[None, :] < DQK), other=0.0)
            q_next = tl.load(next_ts + start + offs_m, mask=m_mask, other=0)
            acc = tl.zeros((BLOCK_M, DV_P), dtype=tl.float32)
            hi = tl.minimum(q0 + BLOCK_M, n)
            for k0 in range(0, hi, BLOCK_N):
                if (k0 < history) | (k0 + BLOCK_N > q0):  # a block of candidates only, before q0: all masked
                    offs_n = k0 + tl.arange(0, BLOCK_N)
                    n_mask = offs_n < n
                    k = tl.load(K + (start + offs_n)[:, None] * stride_k + h * DQK + offs_dqk[None, :],
                                mask=n_mask[:, None] & (offs_dqk[None, :] < DQK), other=0.0)
                    v = tl.load(V + (start + offs_n)[:, None] * stride_v + h * DV + offs_dv[None, :],
                                mask=n_mask[:, None] & (offs_dv[None, :] < DV), other=0.0)
                    k_ts = tl.load(ts + start + offs_n, mask=n_mask, other=0)
                    s = tl.dot(q, tl.trans(k)).to(tl.float32)
                    rel = offs_n[None, :] - offs_m[:, None] + max_len - 1
                    rel = tl.minimum(tl.maximum(rel, 0), 2 * max_len - 2)
                    s += tl.load(pos_w + rel).to(tl.float32)
                    delta = q_next[:, None] - k_ts[None, :]
                    delta = tl.maximum(tl.where(delta < 0, -delta, delta), 1)
                    bucket = (tl.log(delta.to(tl.float32)) / 0.301).to(tl.int32)
                    bucket = tl.minimum(tl.maximum(bucket, 0), num_buckets)
                    s += tl.load(ts_w + bucket).to(tl.float32)
                    s = s * tl.sigmoid(s) * inv_n
                    allowed = (offs_n[None, :] <= offs_m[:, None]) & (
                        (offs_n[None, :] < history) | (offs_n[None, :] == offs_m[:, None]))
                    allowed = allowed & n_mask[None, :] & m_mask[:, None]
                    s = tl.where(allowed, s, 0.0)
                    acc += tl.dot(s.to(v.dtype), v).to(tl.float32)
            tl.store(Out + (start + offs_m)[:, None] * stride_o + h * DV + offs_dv[None, :],
                     acc.to(Out.dtype.element_ty), mask=m_mask[:, None] & (offs_dv[None, :] < DV))


def triton_attention(q, k, v, layout, bias, heads: int, scale_n: int, *, block_m: int = 64, block_n: int = 64):
    """HSTU attention over jagged ``q, k, v`` ((ΣLᵢ, H·d)) with the Triton kernel; the signature of
    :func:`genaccel_hstu.model.fused_attention`."""
    if triton is None:
        raise RuntimeError("the Triton HSTU attention needs triton (pip install triton)")
    total = q.shape[0]
    dqk, dv = q.shape[1] // heads, v.shape[1] // heads
    out = v.new_zeros(total, heads * dv)
    lengths = layout.lengths
    if total == 0 or len(lengths) == 0:
        return out
    max_n = int(lengths.max())
    if max_n == 0:
        return out
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    p2 = lambda d: max(16, triton.next_power_of_2(d))  # noqa: E731 - tl.dot needs 16 or more
    grid = (triton.cdiv(max_n, block_m), len(lengths) * heads)
    _hstu_attention_fwd[grid](
        q, k, v, out, layout.offsets, layout.timestamps.contiguous(), layout.next_timestamps().contiguous(),
        layout.num_targets, bias.pos_w.detach().contiguous(), bias.ts_w.detach().contiguous(),
        q.stride(0), k.stride(0), v.stride(0), out.stride(0), bias.max_len, bias.num_buckets, 1.0 / scale_n,
        H=heads, DQK=dqk, DV=dv, DQK_P=p2(dqk), DV_P=p2(dv), BLOCK_M=block_m, BLOCK_N=block_n,
    )
    return out
