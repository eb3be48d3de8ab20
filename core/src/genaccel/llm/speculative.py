"""Self-speculative decoding with early exit (LayerSkip).

Each cycle drafts ``k`` tokens with the first ``E`` layers and the shared norm and LM head,
then verifies them with layers [E, N) in one forward that starts from the drafts' cached
layer-E hidden states (early layers never run twice on a token).  Greedy: the longest prefix
where draft and full model agree is kept, plus the full model's next token, so the output is
exactly plain greedy decoding's.  Sampling: each draft is accepted with probability
min(1, p/q) and the first rejected one is resampled from max(0, p - q), so the tokens follow
the full model's distribution (Leviathan et al., 2023).

A batch shares one cache position, so every row keeps the batch's shortest accepted prefix:
rows that accepted more emit their accepted draft token at that point, which is still exact.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from ..engine.clock import synchronize
from ..engine.profiling import phase
from ..errors import GenaccelError
from ..files import read_json_object
from .decoding import DecodeRun, draw, nucleus_probs

#: File a checkpoint directory may hold with its best exit layer and draft length.
SETTINGS_FILE = "layerskip.json"


def accept_greedy(drafts: torch.Tensor, logits: torch.Tensor):
    """Accepted prefix length per row, and the full model's token after each prefix (B, k+1)."""
    target = logits.argmax(-1)
    agree = (drafts == target[:, :-1]).int().cumprod(-1).sum(-1)
    return agree, target


def accept_sampled(drafts, q, p, generator):
    """Rejection sampling: accepted prefix length per row and the token that follows it.

    ``drafts`` (B, k) drawn from ``q`` (B, k, V); ``p`` (B, k+1, V) the full model's
    distributions.  Returns (accepted (B,), next token for every possible prefix length (B, k+1)).
    """
    p_d = p[:, :-1].gather(-1, drafts[..., None]).squeeze(-1)
    q_d = q.gather(-1, drafts[..., None]).squeeze(-1)
    u = torch.rand(p_d.shape, generator=generator, device=p.device)
    agree = (u * q_d < p_d).int().cumprod(-1).sum(-1)
    residual = (p[:, :-1] - q).clamp(min=0)
    residual = torch.where(residual.sum(-1, keepdim=True) > 0, residual, p[:, :-1])
    nxt = draw(torch.cat([residual, p[:, -1:]], dim=1), generator)
    return agree, nxt


def checkpoint_settings(checkpoint) -> dict:
    """The exit layer and draft length saved beside a checkpoint (by the sweep), if any; each a
    whole number >= 1, or a clear error naming the file and key."""
    if not checkpoint:
        return {}
    path = Path(checkpoint) / SETTINGS_FILE
    if not path.exists():
        return {}
    data = read_json_object(path, "LayerSkip settings")
    settings = {}
    for key in ("exit_layer", "draft_len"):
        if key not in data:
            continue
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise GenaccelError(f"{str(path)!r}: {key} is {json.dumps(value)}; it must be a whole number >= 1 "
                                f"(e.g. \"{key}\": 4), or left out")
        settings[key] = value
    return settings


class _Drafts:
    """One batch's draft-and-verify state: the k drafted tokens, their layer-E hidden states and, when
    sampling, their draft distributions."""

    def __init__(self, model, *, exit_layer: int, k: int, bsz: int, device, sampling):
        self.model, self.exit_layer, self.k, self.device, self.sampling = model, exit_layer, k, device, sampling
        self.tokens = torch.zeros((bsz, k), dtype=torch.long, device=device)
        self.hidden = self.q = None

    def probs(self, logits):
        temperature, top_p, _ = self.sampling
        return nucleus_probs(logits, temperature, top_p)

    def first(self, logits):
        """The token after the prompt: argmax, or drawn from the nucleus."""
        return logits.argmax(-1) if self.sampling is None else draw(self.probs(logits), self.sampling[2])

    def draft(self, token, pos) -> None:
        """k tokens through layers [0, E) from ``token`` at ``pos``, with their hidden states."""
        cur = token
        for i in range(self.k):
            h, logits = self.model.draft(cur, pos + i, self.exit_layer)
            if self.hidden is None:
                self.hidden = torch.empty((h.shape[0], self.k, h.shape[-1]), dtype=h.dtype, device=self.device)
                if self.sampling is not None:
                    self.q = torch.empty((h.shape[0], self.k, logits.shape[-1]), dtype=torch.float32, device=self.device)
            self.hidden[:, i : i + 1].copy_(h)
            if self.sampling is None:
                cur = logits.argmax(-1)
            else:
                self.q[:, i] = self.probs(logits)
                cur = draw(self.q[:, i], self.sampling[2])
            self.tokens[:, i] = cur

    def verify(self, pos):
        """The full model over the drafts: the accepted prefix per row and the token after each prefix."""
        logits = self.model.verify(self.tokens[:, -1], self.hidden, pos, self.exit_layer)
        if self.sampling is None:
            return accept_greedy(self.tokens, logits)
        return accept_sampled(self.tokens, self.q, self.probs(logits), self.sampling[2])


def speculate(model, batch, *, exit_layer, draft_len, device, pad_id, max_seq_len, eos_id=None, sampling=None):
    """Generate each sample's ``max_new_tokens`` tokens by draft-and-verify cycles.

    The cache gets ``draft_len`` positions beyond ``max_seq_len``: a cycle may draft past the
    last token it keeps.  ``sampling``: (temperature, top_p, generator), or None for greedy.
    """
    k = draft_len
    run = DecodeRun(batch, device=device, pad_id=pad_id, max_seq_len=max_seq_len, eos_id=eos_id, models=(model,),
                    extra=k)
    length, steps, pos = run.length, run.steps, run.pos
    out = torch.zeros((run.bsz, steps + k + 1), dtype=torch.long, device=device)
    drafts = _Drafts(model, exit_layer=exit_layer, k=k, bsz=run.bsz, device=device, sampling=sampling)
    run.start()
    with phase("prefill"):
        token = drafts.first(model.prefill(run.ids, run.valid))
        out[:, 0] = token
    run.mark()
    emitted_at = [0]  # clock mark that emitted each token
    n, cycles, accepted, draft_s, verify_s = 1, 0, 0, 0.0, 0.0
    while n < steps:
        t0 = time.perf_counter()
        with phase("draft"):
            drafts.draft(token, pos)
        synchronize(device)
        t1 = time.perf_counter()
        with phase("verify"):
            agree, nxt = drafts.verify(pos)
            a = int(agree.min())  # the cycle's one host sync
            token = torch.where(agree > a, drafts.tokens[:, a], nxt[:, a]) if a < k else nxt[:, a]
            out[:, n : n + a] = drafts.tokens[:, :a]
            out[:, n + a] = token
        draft_s, verify_s = draft_s + t1 - t0, verify_s + time.perf_counter() - t1
        pos += a + 1
        model.crop(length + n + a)
        n, cycles, accepted = n + a + 1, cycles + 1, accepted + a
        run.mark()
        emitted_at += [cycles] * (a + 1)
        run.stop(out[:, n - a - 1 : n])
        if run.stopped():
            break
    model.crop(length + min(n, steps) - 1)  # the last cycle may have gone past the tokens asked for
    stats = {"exit_layer": exit_layer, "draft_len": k, "cycles": cycles, "drafted": cycles * k, "accepted": accepted,
             "acceptance_rate": accepted / (cycles * k) if cycles else None,
             "tokens_per_cycle": (n - 1) / cycles if cycles else None, "draft_s": draft_s, "verify_s": verify_s}
    result = run.finish(out[:, : min(n, steps)].tolist(), decode_steps=cycles, mark_of=emitted_at.__getitem__,
                        extra={"speculative": stats})
    result.phases = {"prefill": result.prefill_s, "draft": draft_s, "verify": verify_s}
    return result
