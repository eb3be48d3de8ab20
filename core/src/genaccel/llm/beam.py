"""Beam search over the step protocol, with the cache reordered after every step.

It follows transformers' vectorized beam search step for step, so that on the same weights it
returns the same hypotheses: each step keeps the ``2·K`` best continuations of the ``K`` running
beams; those ending in EOS (or at the length limit) among the first ``K`` become finished
hypotheses scored ``log p / length**length_penalty``; the ``K`` best unfinished ones run on; a
row stops once no running beam can beat its worst finished one (transformers' heuristic for
``early_stopping=False``).  Everything stays on the device; the only host syncs are the stopping
checks every ``check_every`` steps (extra steps after a row is done change nothing: its new
candidates are masked).

The cache follows the surviving beams through ``model.reorder_cache(index, filled)``: in place
on the static cache (``copy_`` of ``index_select`` over the filled positions: addresses never
change, as CUDA graphs need), new tensors on the dynamic one.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..engine.profiling import phase
from ..plugin.batch import BatchResult
from .decoding import DecodeRun

NEG = -1.0e9


def _gather(t: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``t[b, index[b, j], ...]`` for (B, N, ...) ``t`` and (B, M) ``index``."""
    while index.dim() < t.dim():
        index = index.unsqueeze(-1)
    return t.gather(1, index.expand(*index.shape[:2], *t.shape[2:]))


@torch.no_grad()
def beam_search(model, batch: Sequence, *, num_beams: int = 5, length_penalty: float = 1.0, device: str, pad_id: int,
                max_seq_len: int, eos_id: int | None = None, check_every: int = 4) -> BatchResult:
    k = num_beams
    keep = 2 * k  # candidates kept per step, so that K can run on whatever ends
    run = DecodeRun(batch, device=device, pad_id=pad_id, max_seq_len=max_seq_len, eos_id=eos_id, models=(model,),
                    rows=len(batch) * k)
    bsz, length, steps = run.bsz, run.length, run.steps
    running = torch.zeros((bsz, k, steps), dtype=torch.long, device=device)
    scores = torch.zeros((bsz, k), device=device)
    scores[:, 1:] = NEG  # the K copies of a prompt start as one beam
    finished = torch.full((bsz, k, steps), pad_id, dtype=torch.long, device=device)
    finished_scores = torch.full((bsz, k), NEG, device=device)
    is_finished = torch.zeros((bsz, k), dtype=torch.bool, device=device)
    improvable = torch.ones((bsz, 1), dtype=torch.bool, device=device)
    first_k = torch.arange(keep, device=device) < k
    offsets = (torch.arange(bsz, device=device) * k)[:, None]
    run.start()
    ran = 0
    for t in range(steps):
        with phase("prefill" if t == 0 else "decode"):
            if t == 0:
                logits = model.prefill(run.ids.repeat_interleave(k, 0), run.valid.repeat_interleave(k, 0))
            else:
                tokens = running[:, :, t - 1].reshape(-1).contiguous()  # fixed strides: one graph
                logits = model.decode(tokens, run.pos, length + t)
                run.pos += 1
            logp = torch.log_softmax(logits.float(), dim=-1).view(bsz, k, -1) + scores[:, :, None]
            vocab = logp.shape[-1]
            top_lp, top_idx = logp.view(bsz, -1).topk(keep, dim=-1)
            source = top_idx // vocab  # which running beam each candidate extends
            candidates = _gather(running, source)
            candidates[:, :, t] = top_idx % vocab
            ends = torch.zeros_like(top_lp, dtype=torch.bool) if eos_id is None else candidates[:, :, t] == eos_id
            ends |= t + 1 >= steps
            # the K best that go on
            run_lp = top_lp + ends.float() * NEG
            go_on = run_lp.topk(k, dim=-1).indices
            running, scores = _gather(candidates, go_on), _gather(run_lp, go_on)
            # the ones that end, among the first K, join the finished if they beat them
            fin_lp = top_lp / float(t + 1) ** length_penalty
            fin_lp = fin_lp + (~improvable).float() * NEG + (~(ends & first_k)).float() * NEG
            best = torch.cat([finished_scores, fin_lp], 1).topk(k, dim=-1).indices
            finished = _gather(torch.cat([finished, candidates], 1), best)
            finished_scores = _gather(torch.cat([finished_scores, fin_lp], 1), best)
            is_finished = _gather(torch.cat([is_finished, ends & first_k], 1), best)
            # can a running beam still beat the worst finished one?
            best_running = scores[:, :1] / float(t + 1) ** length_penalty
            worst = torch.where(is_finished, finished_scores.min(dim=1, keepdim=True).values, NEG)
            improvable &= (best_running > worst).any(dim=-1, keepdim=True)
        if t + 1 < steps:
            with phase("kv reorder"):  # the cache follows the beams that run on
                model.reorder_cache((_gather(source, go_on) + offsets).view(-1), length + t)
        ran += 1
        run.mark()
        if t + 1 < steps and (t + 1) % check_every == 0 and not bool(improvable.any()):
            break
    # the best finished hypothesis; finish cuts the pad that follows an early EOS
    return run.finish(finished[:, 0, :ran].tolist(), decode_steps=ran - 1, kv_rows=bsz * k,
                      extra={"beam": {"num_beams": k, "length_penalty": length_penalty,
                                      "scores": finished_scores[:, 0].tolist()}})
