"""HSTU (the generative-recommenders research layer) over jagged sequences.

Layer: ``u, v, q, k = split(SiLU(LayerNorm(x) @ W_uvqk))``; ``A = SiLU(q kᵀ + rab) / N`` (causal, no
softmax); ``y = x + Linear(Dropout(u ⊙ LayerNorm(A v)))``.  rab is a positional bias
``w_pos[j − i + N − 1]`` plus a time bias ``w_ts[bucket(ts[i+1] − ts[j])]`` with
``bucket = clamp(int(ln(max(|Δ|, 1)) / 0.301), 0, num_buckets)``, shared across heads.  N is the
model's maximum sequence length.  For the last event of a sequence ``ts[i+1]`` is its own timestamp.

Sequences are jagged: values (ΣLᵢ, D) with ``offsets`` (B+1).  A sequence may end with
``num_targets`` candidates: each sees the history and itself, never another candidate.
"""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F
from genaccel.api import StepExecutor, region
from torch import nn


@attrs.frozen(kw_only=True)
class HSTUConfig:
    num_items: int = 6001  # item ids 0..6000
    num_actions: int = 4  # engagement types
    dim: int = 64
    heads: int = 2
    qk_dim: int = 32
    v_dim: int = 32
    layers: int = 4
    full_layers: int = 1  # the first layers see the whole history; the rest only the last `truncate_to`
    truncate_to: int = 1024
    max_len: int = 8192
    num_buckets: int = 128
    dropout: float = 0.0


@attrs.frozen(kw_only=True)
class Jagged:
    """Per-batch layout shared by every layer."""

    offsets: torch.Tensor  # (B+1,) int64
    timestamps: torch.Tensor  # (T,) int64
    num_targets: torch.Tensor  # (B,) int64 candidates at the end of each sequence

    @property
    def lengths(self) -> torch.Tensor:
        return self.offsets[1:] - self.offsets[:-1]

    def next_timestamps(self) -> torch.Tensor:
        """ts[i+1] inside each sequence; the last event uses its own timestamp."""
        nxt = torch.roll(self.timestamps, -1)
        last = self.offsets[1:] - 1
        last = last[self.lengths > 0]
        nxt[last] = self.timestamps[last]
        return nxt

    def keep_last(self, k: int) -> tuple[torch.Tensor, Jagged]:
        """Indices of the last k history events (plus every candidate) of each sequence."""
        lengths, starts = self.lengths.tolist(), self.offsets[:-1].tolist()
        idx, new_len = [], []
        for start, n, t in zip(starts, lengths, self.num_targets.tolist()):
            keep = min(n, k + t)
            idx.append(torch.arange(start + n - keep, start + n))
            new_len.append(keep)
        index = torch.cat(idx).to(self.offsets.device) if idx else self.offsets.new_zeros(0)
        offsets = F.pad(torch.tensor(new_len, device=self.offsets.device).cumsum(0), (1, 0))
        return index, Jagged(offsets=offsets, timestamps=self.timestamps[index], num_targets=self.num_targets)


def bucketize(delta: torch.Tensor, num_buckets: int) -> torch.Tensor:
    return (torch.log(delta.abs().clamp(min=1).float()) / 0.301).long().clamp(0, num_buckets)


class RelativeBias(nn.Module):
    def __init__(self, max_len: int, num_buckets: int):
        super().__init__()
        self.max_len, self.num_buckets = max_len, num_buckets
        self.pos_w = nn.Parameter(torch.zeros(2 * max_len - 1))
        self.ts_w = nn.Parameter(torch.zeros(num_buckets + 1))

    def block(self, q_pos, k_pos, q_next_ts, k_ts) -> torch.Tensor:
        """Bias for queries at positions ``q_pos`` and keys at ``k_pos`` of one sequence: (bq, bk)."""
        rel = k_pos[None, :] - q_pos[:, None] + self.max_len - 1
        pos = self.pos_w[rel.clamp(0, 2 * self.max_len - 2)]
        return pos + self.ts_w[bucketize(q_next_ts[:, None] - k_ts[None, :], self.num_buckets)]

    def dense(self, ts_padded: torch.Tensor, next_padded: torch.Tensor) -> torch.Tensor:
        """Materialized (B, N, N) bias of padded sequences (the baseline)."""
        n = ts_padded.shape[1]
        pos = torch.arange(n, device=ts_padded.device)
        rel = pos[None, :] - pos[:, None] + self.max_len - 1
        delta = next_padded[:, :, None] - ts_padded[:, None, :]
        return self.pos_w[rel.clamp(0, 2 * self.max_len - 2)][None] + self.ts_w[bucketize(delta, self.num_buckets)]


def allowed(q_pos, k_pos, history_len: int) -> torch.Tensor:
    """Causal, and a candidate (position >= history_len) sees only the history and itself."""
    causal = k_pos[None, :] <= q_pos[:, None]
    return causal & ((k_pos[None, :] < history_len) | (k_pos[None, :] == q_pos[:, None]))


def dense_attention(q, k, v, layout: Jagged, bias: RelativeBias, heads: int, scale_n: int):
    """The study's baseline: pad to (B, N), materialize B×H×N×N scores and the N×N bias."""
    lengths = layout.lengths
    bsz, n = len(lengths), int(lengths.max()) if len(lengths) else 0
    if n == 0:
        return v.new_zeros(v.shape)
    pos = torch.arange(n, device=q.device)
    valid = pos[None, :] < lengths[:, None]  # (B, N)
    rows = torch.repeat_interleave(torch.arange(bsz, device=q.device), lengths)
    cols = torch.arange(q.shape[0], device=q.device) - layout.offsets[:-1][rows]

    def pad(x, fill=0):
        out = x.new_full((bsz, n, *x.shape[1:]), fill)
        out[rows, cols] = x
        return out

    qd, kd, vd = (pad(t).view(bsz, n, heads, -1) for t in (q, k, v))
    last_ts = layout.timestamps[(layout.offsets[1:] - 1).clamp(min=0)]
    ts = torch.where(valid, pad(layout.timestamps), last_ts[:, None])  # padding repeats the last time
    nxt = torch.cat([ts[:, 1:], ts[:, -1:]], dim=1)
    scores = torch.einsum("bnhd,bmhd->bhnm", qd, kd) + bias.dense(ts, nxt)[:, None]
    history = (lengths - layout.num_targets)[:, None, None]
    causal = pos[None, :] <= pos[:, None]
    mask = causal[None] & ((pos[None, None, :] < history) | (pos[None, None, :] == pos[None, :, None]))
    mask = mask & valid[:, None, :] & valid[:, :, None]
    attn = F.silu(scores) / scale_n * mask[:, None]
    out = torch.einsum("bhnm,bmhd->bnhd", attn, vd).reshape(bsz, n, -1)
    return out[rows, cols]


def fused_attention(q, k, v, layout: Jagged, bias: RelativeBias, heads: int, scale_n: int, block: int = 256):
    """Block-wise over each sequence's real length: no padding, fully masked blocks skipped, the bias
    built per block inside the loop.  Memory is O(H · block²), never O(N²)."""
    out = v.new_zeros(v.shape[0], v.shape[1])
    dv = v.shape[1] // heads
    nxt_all = layout.next_timestamps()
    ar = torch.arange(block, device=q.device)
    for start, n, targets in zip(layout.offsets[:-1].tolist(), layout.lengths.tolist(), layout.num_targets.tolist()):
        if n == 0:
            continue
        history = n - targets
        qs_, ks_, vs_ = (t[start : start + n].view(n, heads, -1).transpose(0, 1) for t in (q, k, v))
        ts, nxt = layout.timestamps[start : start + n], nxt_all[start : start + n]
        for q0 in range(0, n, block):
            q1 = min(q0 + block, n)
            q_pos = ar[: q1 - q0] + q0
            acc = v.new_zeros(heads, q1 - q0, dv)
            for k0 in range(0, q1, block):  # keys after the last query of the block are all masked
                k1 = min(k0 + block, n)
                if k0 >= history and k1 <= q0:  # candidates never see other candidates
                    continue
                k_pos = ar[: k1 - k0] + k0
                s = torch.matmul(qs_[:, q0:q1], ks_[:, k0:k1].transpose(1, 2))
                s = F.silu(s + bias.block(q_pos, k_pos, nxt[q0:q1], ts[k0:k1])) / scale_n
                if k1 > q0 or k1 > history:  # the block crosses the diagonal or touches candidates
                    s = s * allowed(q_pos, k_pos, history)
                acc += torch.matmul(s, vs_[:, k0:k1])
            out[start + q0 : start + q1] = acc.transpose(0, 1).reshape(q1 - q0, heads * dv)
    return out


class HSTULayer(nn.Module):
    def __init__(self, cfg: HSTUConfig):
        super().__init__()
        self.cfg = cfg
        h = cfg.heads
        self.input_norm = nn.LayerNorm(cfg.dim, eps=1e-6)
        self.uvqk = nn.Linear(cfg.dim, h * (2 * cfg.v_dim + 2 * cfg.qk_dim), bias=False)
        self.output_norm = nn.LayerNorm(h * cfg.v_dim, eps=1e-6)
        self.dropout = nn.Dropout(cfg.dropout)
        self.o = nn.Linear(h * cfg.v_dim, cfg.dim)
        self.rab = RelativeBias(cfg.max_len, cfg.num_buckets)

    def project(self, x):
        h, cfg = self.cfg.heads, self.cfg
        return torch.split(F.silu(self.uvqk(self.input_norm(x))), [h * cfg.v_dim, h * cfg.v_dim, h * cfg.qk_dim, h * cfg.qk_dim], dim=-1)

    def output(self, x, u, attn):
        return x + self.o(self.dropout(u * self.output_norm(attn)))

    def forward(self, x, layout: Jagged, attention, steps: StepExecutor | None = None):
        """``steps`` runs the projection and the output (compiled: :meth:`HSTU.set_compile`)."""
        run = steps.run if steps is not None else _eager
        u, v, q, k = run((self, "project"), self.project, x)
        with region("Attention", attention.__name__):
            attn = attention(q, k, v, layout, self.rab, self.cfg.heads, self.cfg.max_len)
        return run((self, "output"), self.output, x, u, attn)


def _eager(key, fn, *args):
    return fn(*args)


class HSTU(nn.Module):
    def __init__(self, cfg: HSTUConfig):
        super().__init__()
        self.cfg = cfg
        self.item_emb = nn.Embedding(cfg.num_items, cfg.dim)
        self.action_emb = nn.Embedding(cfg.num_actions, cfg.dim)
        self.layers = nn.ModuleList(HSTULayer(cfg) for _ in range(cfg.layers))
        self.final_norm = nn.LayerNorm(cfg.dim, eps=1e-6)
        self.ranking_head = nn.Sequential(nn.Linear(cfg.dim, cfg.dim), nn.SiLU(), nn.Linear(cfg.dim, cfg.num_actions))
        self.attention = dense_attention
        self.steps = StepExecutor()  # each layer's projection and output: eager unless set_compile

    def set_compile(self, mode: str) -> None:
        """Compile each layer's projection and output (dynamic shapes: histories vary in length);
        the attention runs as chosen."""
        self.steps = StepExecutor(str(self.item_emb.weight.device))
        self.steps.configure(compile=mode, fullgraph=False, dynamic=True)

    def embed(self, items, actions):
        return self.item_emb(items) + self.action_emb(actions)

    def forward(self, x, layout: Jagged) -> tuple[torch.Tensor, Jagged]:
        """Run every layer; after ``full_layers`` keep each sequence's last ``truncate_to`` events."""
        for i, layer in enumerate(self.layers):
            if i == self.cfg.full_layers and self.cfg.truncate_to:
                index, layout = layout.keep_last(self.cfg.truncate_to)
                x = x[index]
            x = layer(x, layout, self.attention, self.steps)
        return self.final_norm(x), layout
