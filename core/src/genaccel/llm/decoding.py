"""What every decode loop shares (:class:`DecodeRun`: padding, cache setup, clock, stop tokens,
records), the token loop of greedy, top-p and guidance, and picking the next token."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ..engine.clock import StepClock, synced_now
from ..engine.profiling import phase
from ..errors import GenaccelError
from ..plugin.batch import BatchResult
from ..plugin.roles import MediaCodec


def pad_left(batch: Sequence, pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad the samples' prompts: (input_ids, valid) of shape (B, L_max)."""
    length = max(len(s.input_ids) for s in batch)
    ids = torch.full((len(batch), length), pad_id, dtype=torch.long)
    valid = torch.zeros((len(batch), length), dtype=torch.bool)
    for row, sample in enumerate(batch):
        n = len(sample.input_ids)
        ids[row, length - n :] = torch.tensor(sample.input_ids, dtype=torch.long)
        valid[row, length - n :] = True
    return ids.to(device), valid.to(device)


def stop_token(instance) -> int | None:
    """The EOS id that ends a sample, or None for random weights (samples run their full length)."""
    return None if instance.random_weights else instance.eos_token_id


def loop_options(ctx) -> dict:
    """What every decode loop takes from the run: device, pad id, cache length and stop token."""
    inst = ctx.instance
    return dict(device=ctx.device, pad_id=inst.pad_token_id, max_seq_len=ctx.max_seq_len, eos_id=stop_token(inst))


def padded_prompts(batch: Sequence, pad_id: int, device, max_seq_len: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Left-padded prompts and the most new tokens any sample asks for, checked against the cache."""
    ids, valid = pad_left(batch, pad_id, device)
    length = ids.shape[1]
    steps = max(s.max_new_tokens for s in batch)
    if length + steps > max_seq_len:
        raise GenaccelError(
            f"a prompt of {length} tokens plus {steps} new tokens does not fit the KV cache of "
            f"{max_seq_len} positions; raise --cache-len or lower --max-new-tokens"
        )
    return ids, valid, steps


def sample_records(batch: Sequence, outputs: list[list[int]], times: list[float], eos_id: int | None,
                   mark_of=lambda j: j, per_token: bool = True) -> list[dict]:
    """Cut each row at its sample's length and first EOS (in place) and time it.

    ``times[mark_of(j)]`` is when token ``j`` was out (a decode step, or a speculative cycle).
    Without ``per_token`` every sample takes the batch's whole time (no first-token or per-token time).
    """
    records = []
    for row, sample in enumerate(batch):
        toks = outputs[row][: sample.max_new_tokens]
        if eos_id is not None and eos_id in toks:
            toks = toks[: toks.index(eos_id) + 1]
        outputs[row] = toks
        n = len(toks)
        latency = times[mark_of(n - 1)] if per_token else times[-1]
        records.append(
            {
                "id": sample.id,
                "input_tokens": len(sample.input_ids),
                "output_tokens": n,
                "latency_s": latency,
                "ttft_s": times[0] if per_token else None,
                "tpot_s": (latency - times[0]) / (n - 1) if per_token and n > 1 else None,
            }
        )
    return records


class DecodeRun:
    """One batch through a decode loop: the frame greedy, top-p, beam, self-speculative, guidance
    and transformers' generate share.

    It left-pads the prompts (``ids``, ``valid``: ``bsz`` rows of ``length``; ``steps``: the most
    new tokens a sample asks for), checked against the cache; sets up each of ``models``' caches
    for ``rows`` rows (default ``bsz``) and ``extra`` positions beyond the run's; holds the decode
    position ``pos`` (on the device); keeps the clock (``start()``, then ``mark()`` after each step:
    the first mark is prefill's); follows stop tokens (``stop(tokens)`` on the device, ``stopped()``
    the host sync); and ``finish`` cuts each sample at its length and first EOS and returns the
    batch's records and timings.
    """

    def __init__(self, batch: Sequence, *, device, pad_id: int, max_seq_len: int, eos_id: int | None = None,
                 models=(), rows: int | None = None, extra: int = 0):
        self.batch, self.device, self.eos_id = batch, device, eos_id
        self.ids, self.valid, self.steps = padded_prompts(batch, pad_id, device, max_seq_len)
        self.bsz, self.length = self.ids.shape
        for model in models:
            model.setup(rows or self.bsz, max_seq_len + extra)
        self.pos = torch.tensor(self.length, dtype=torch.long, device=device)
        self.done = torch.zeros(self.bsz, dtype=torch.bool, device=device)
        self.clock = StepClock(device)

    def start(self) -> None:
        self.clock.start()

    def mark(self) -> None:
        self.clock.mark()

    def stop(self, tokens: torch.Tensor) -> None:
        """Rows whose new ``tokens`` ((B,) or (B, n)) hold the stop token are done (no host sync)."""
        if self.eos_id is not None:
            hit = tokens == self.eos_id
            self.done |= hit.any(-1) if hit.dim() > 1 else hit

    def stopped(self) -> bool:
        """Every row is done (a host sync)."""
        return self.eos_id is not None and bool(self.done.all())

    def token_loop(self, prefill: Callable[[], torch.Tensor], decode: Callable[..., torch.Tensor],
                   check_every: int = 8) -> list[list[int]]:
        """One token per row and step: ``prefill()`` gives the first, ``decode(token, pos, kv_len)``
        each next one (``kv_len``: the positions it reads).  Stops when every sample has its
        tokens, or every row its stop token (checked every ``check_every`` steps, the loop's only
        host syncs).  Returns the tokens per row."""
        out = torch.zeros((self.bsz, self.steps), dtype=torch.long, device=self.device)
        self.start()
        with phase("prefill"):
            token = prefill()
            out[:, 0] = token
        self.mark()
        ran = 1
        for step in range(1, self.steps):
            self.stop(token)
            if step % check_every == 0 and self.stopped():
                break
            with phase("decode"):
                token = decode(token, self.pos, self.length + step)  # reads positions < length + step
                out[:, step] = token
                self.pos += 1
            ran += 1
            self.mark()
        return out[:, :ran].tolist()

    def kv_read(self, rows: int, decode_steps: int) -> int:
        """Cached positions the decode steps attend, over ``rows`` rows."""
        return rows * sum(self.length + i for i in range(1, decode_steps + 1))

    def finish(self, outputs: list[list[int]], *, decode_steps: int, kv_rows: int = 0, mark_of=lambda j: j,
               per_token: bool = True, **fields) -> BatchResult:
        """The batch's result: ``outputs`` cut per sample (in place), records and timings from the clock."""
        times = self.clock.seconds()
        records = sample_records(self.batch, outputs, times, self.eos_id, mark_of, per_token)
        kv = self.kv_read(kv_rows, decode_steps)
        if not per_token:  # one time for the whole batch: no prefill, decode or step times
            return BatchResult(records=records, outputs=outputs, latency_s=times[-1], decode_steps=decode_steps,
                               kv_tokens_read=kv, **fields)
        return BatchResult.from_clock(times, records=records, outputs=outputs, decode_steps=decode_steps,
                                      kv_tokens_read=kv, **fields)


def with_media(ctx, batch: Sequence, decode: Callable[[Sequence], BatchResult]) -> BatchResult:
    """``decode(batch)`` between the workload's media encoder and decoder (role ``MediaCodec``).

    ``media_phases`` names the encode and decode phases (None where there is none; a tuple of
    names where ``decode_outputs`` enters several phases itself and returns their seconds beside
    the media); ``encode_inputs(batch) -> batch`` turns inputs into tokens (the returned samples
    carry the final ``input_ids``), ``decode_outputs(batch, outputs)`` tokens into media and
    ``save_outputs(batch, media, out_dir) -> list[dict]`` (untimed) gives per-sample record fields
    such as ``files``; the media stay in ``extra["decoded"]``.  Encode and decode count in every
    sample's latency (and encode in its time to first token) and are reported as phases.
    """
    if not ctx.has(MediaCodec):
        return decode(batch)
    inst, dev = ctx.instance, ctx.device
    names = inst.media_phases
    encode_s = decode_s = 0.0
    if names[0]:
        t0 = synced_now(dev)
        with phase(names[0]):
            batch = inst.encode_inputs(batch)
        encode_s = synced_now(dev) - t0
    result = decode(batch)
    media, decode_phases = [None] * len(batch), {}
    if isinstance(names[1], tuple):  # several phases, timed by the workload
        media, decode_phases = inst.decode_outputs(batch, result.outputs)
        decode_s = sum(decode_phases.values())
    elif names[1]:
        t0 = synced_now(dev)
        with phase(names[1]):
            media = inst.decode_outputs(batch, result.outputs)
        decode_s = decode_phases[names[1]] = synced_now(dev) - t0
    if names[1]:
        result.extra["decoded"] = list(media)  # for the quality impact of lossy stacks (accuracy.py)
    extras = inst.save_outputs(batch, media, ctx.config.out_dir) if names[1] else [{}] * len(batch)
    for rec, extra in zip(result.records, extras):
        rec["latency_s"] += encode_s + decode_s
        if rec.get("ttft_s") is not None:
            rec["ttft_s"] += encode_s
        rec.update(extra)
    result.latency_s += encode_s + decode_s
    result.phases = {**({names[0]: encode_s} if names[0] else {}), **result.phases, **decode_phases}
    return result


# --- picking the next token -------------------------------------------------------------------


def greedy_pick(logits: torch.Tensor) -> torch.Tensor:
    return logits.argmax(dim=-1)


def nucleus(logits: torch.Tensor, temperature: float, top_p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Temperature + nucleus: softmax(logits / T) sorted in descending order with the mass past
    ``top_p`` zeroed (unnormalized), and the sort order (token id of each sorted position)."""
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    return sorted_probs.masked_fill(sorted_probs.cumsum(-1) - sorted_probs > top_p, 0.0), order


def nucleus_probs(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """The distribution top-p sampling draws from, over the vocabulary (normalized)."""
    sorted_probs, order = nucleus(logits, temperature, top_p)
    kept = torch.zeros_like(sorted_probs).scatter_(-1, order, sorted_probs)
    return kept / kept.sum(-1, keepdim=True)


def draw(weights: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One index per row, drawn proportionally to the (unnormalized) non-negative weights, on the
    device: argmax(w / E) with E ~ Exp(1) (an exponential race; no host sync)."""
    race = torch.empty_like(weights).exponential_(1.0, generator=generator)
    return (weights / race).argmax(dim=-1)


def top_p_pick(temperature: float, top_p: float, generator: torch.Generator) -> Callable:
    """Temperature + nucleus sampling, entirely on the device (no host sync per token)."""

    def pick(logits: torch.Tensor) -> torch.Tensor:
        sorted_probs, order = nucleus(logits, temperature, top_p)
        return order.gather(-1, draw(sorted_probs, generator)[..., None]).squeeze(-1)

    return pick


def top_k_pick(k: int, temperature: float, generator: torch.Generator) -> Callable:
    """Temperature + top-k sampling, on the device: a draw from the ``k`` largest logits of each row
    (all of them where the vocabulary is smaller), renormalized after ``temperature``."""
    if k < 1 or temperature <= 0:
        raise ValueError(f"top-k sampling needs k >= 1 and a positive temperature, got k={k}, temperature={temperature}")

    def pick(logits: torch.Tensor) -> torch.Tensor:
        values, ids = logits.topk(min(k, logits.shape[-1]), dim=-1)
        probs = torch.softmax(values.float() / temperature, dim=-1)
        return ids.gather(-1, draw(probs, generator)[..., None]).squeeze(-1)

    return pick


def generate(model, batch: Sequence, pick: Callable[[torch.Tensor], torch.Tensor], *, device: str, pad_id: int,
             max_seq_len: int, eos_id: int | None = None, eos_check_every: int = 8) -> BatchResult:
    """Greedy or top-p (``pick``): prefill the batch, then decode one token per step until every
    sample has its tokens (or, with ``eos_id``, every row its EOS)."""
    run = DecodeRun(batch, device=device, pad_id=pad_id, max_seq_len=max_seq_len, eos_id=eos_id, models=(model,))
    outputs = run.token_loop(lambda: pick(model.prefill(run.ids, run.valid)),
                             lambda token, pos, kv_len: pick(model.decode(token, pos, kv_len)), eos_check_every)
    return run.finish(outputs, decode_steps=len(outputs[0]) - 1, kv_rows=run.bsz)
