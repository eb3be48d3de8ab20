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
from collections.abc import Sequence
from pathlib import Path

import torch

from .decoding import BatchResult, padded_prompts, sample_records, stop_token, with_media
from .errors import GenaccelError
from .measure import StepClock, synchronize
from .profiling import phase

#: File a checkpoint directory may hold with its best exit layer and draft length.
SETTINGS_FILE = "layerskip.json"


def nucleus_probs(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """The distribution top-p sampling draws from: softmax(logits / T), cut to the nucleus."""
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    sorted_probs = sorted_probs.masked_fill(sorted_probs.cumsum(-1) - sorted_probs > top_p, 0.0)
    kept = torch.zeros_like(probs).scatter_(-1, order, sorted_probs)
    return kept / kept.sum(-1, keepdim=True)


def draw(weights: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One index per row, drawn proportionally to the (unnormalized) non-negative weights."""
    race = torch.empty_like(weights).exponential_(1.0, generator=generator)
    return (weights / race).argmax(dim=-1)


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
    from .files import read_json_object

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


class SelfSpeculative:
    """Decoder ``self-speculative``: greedy (exact) or, with ``sampling``, top-p."""

    def __init__(self, exit_layer=None, draft_len=None, sampling=False, temperature=0.6, top_p=0.9, **options):
        self.exit_layer, self.draft_len = exit_layer, draft_len
        self.sampling, self.temperature, self.top_p = sampling, temperature, top_p
        self._generator = None

    def settings(self, ctx) -> tuple[int, int]:
        """(E, k): the decoder's or run's options, else the checkpoint's saved pair, else N/4 and 4."""
        saved = checkpoint_settings(ctx.config.checkpoint)
        options = ctx.config.options
        n = ctx.instance.model.num_layers
        e = self.exit_layer or options.get("exit_layer") or saved.get("exit_layer") or max(1, n // 4)
        k = self.draft_len or options.get("draft_len") or saved.get("draft_len") or 4
        if not 1 <= e <= n:
            raise GenaccelError(f"exit layer {e} is out of range: the model has {n} layers; use 1..{n}")
        if k < 1:
            raise GenaccelError(f"draft length must be >= 1, got {k}")
        return e, k

    @torch.no_grad()
    def run(self, ctx, batch: Sequence) -> BatchResult:
        inst = ctx.instance
        exit_layer, k = self.settings(ctx)
        if self.sampling and self._generator is None:
            self._generator = torch.Generator(device=ctx.device).manual_seed(ctx.seed)
        return with_media(ctx, batch, lambda b: speculate(
            inst.model, b, exit_layer=exit_layer, draft_len=k, device=ctx.device, pad_id=inst.pad_token_id,
            max_seq_len=ctx.max_seq_len, eos_id=stop_token(inst),
            sampling=(self.temperature, self.top_p, self._generator) if self.sampling else None,
        ))


def speculate(model, batch, *, exit_layer, draft_len, device, pad_id, max_seq_len, eos_id=None, sampling=None):
    """Generate each sample's ``max_new_tokens`` tokens by draft-and-verify cycles.

    The cache gets ``draft_len`` positions beyond ``max_seq_len``: a cycle may draft past the
    last token it keeps.  ``sampling``: (temperature, top_p, generator), or None for greedy.
    """
    ids, valid, steps = padded_prompts(batch, pad_id, device, max_seq_len)
    bsz, length = ids.shape
    k = draft_len
    model.setup(bsz, max_seq_len + k)
    out = torch.zeros((bsz, steps + k + 1), dtype=torch.long, device=device)
    drafts = torch.zeros((bsz, k), dtype=torch.long, device=device)
    hidden = None
    q = None
    if sampling is not None:
        temperature, top_p, generator = sampling
        probs = lambda logits: nucleus_probs(logits, temperature, top_p)  # noqa: E731
    pos = torch.tensor(length, dtype=torch.long, device=device)
    clock = StepClock(device)
    clock.start()
    with phase("prefill"):
        logits = model.prefill(ids, valid)
        token = logits.argmax(-1) if sampling is None else draw(probs(logits), generator)
        out[:, 0] = token
    clock.mark()
    emitted_at = [0]  # clock mark that emitted each token
    n, cycles, accepted, draft_s, verify_s = 1, 0, 0, 0.0, 0.0
    done = torch.zeros(bsz, dtype=torch.bool, device=device)
    while n < steps:
        t0 = time.perf_counter()
        with phase("draft"):
            cur = token
            for i in range(k):
                h, logits = model.draft(cur, pos + i, exit_layer)
                if hidden is None:
                    hidden = torch.empty((bsz, k, h.shape[-1]), dtype=h.dtype, device=device)
                    if sampling is not None:
                        q = torch.empty((bsz, k, logits.shape[-1]), dtype=torch.float32, device=device)
                hidden[:, i : i + 1].copy_(h)
                if sampling is None:
                    cur = logits.argmax(-1)
                else:
                    q[:, i] = probs(logits)
                    cur = draw(q[:, i], generator)
                drafts[:, i] = cur
        synchronize(device)
        t1 = time.perf_counter()
        with phase("verify"):
            logits = model.verify(drafts[:, -1], hidden, pos, exit_layer)
            if sampling is None:
                agree, nxt = accept_greedy(drafts, logits)
            else:
                agree, nxt = accept_sampled(drafts, q, probs(logits), generator)
            a = int(agree.min())  # the cycle's one host sync
            token = torch.where(agree > a, drafts[:, a], nxt[:, a]) if a < k else nxt[:, a]
            out[:, n : n + a] = drafts[:, :a]
            out[:, n + a] = token
        t2 = time.perf_counter()
        draft_s, verify_s = draft_s + t1 - t0, verify_s + t2 - t1
        pos += a + 1
        model.crop(length + n + a)
        n += a + 1
        cycles, accepted = cycles + 1, accepted + a
        clock.mark()
        emitted_at += [cycles] * (a + 1)
        if eos_id is not None:
            done |= (out[:, n - a - 1 : n] == eos_id).any(-1)
            if bool(done.all()):
                break
    times = clock.seconds()
    model.crop(length + min(n, steps) - 1)  # the last cycle may have gone past the tokens asked for
    outputs = out[:, : min(n, steps)].tolist()
    records = sample_records(batch, outputs, times, eos_id, emitted_at.__getitem__)
    stats = {
        "exit_layer": exit_layer,
        "draft_len": k,
        "cycles": cycles,
        "drafted": cycles * k,
        "accepted": accepted,
        "acceptance_rate": accepted / (cycles * k) if cycles else None,
        "tokens_per_cycle": (n - 1) / cycles if cycles else None,
        "draft_s": draft_s,
        "verify_s": verify_s,
    }
    return BatchResult.from_clock(
        times,
        records=records,
        outputs=outputs,
        decode_steps=cycles,
        phases={"prefill": times[0], "draft": draft_s, "verify": verify_s},
        extra={"speculative": stats},
    )
