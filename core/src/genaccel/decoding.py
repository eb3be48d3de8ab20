"""The autoregressive decode loop shared by every model that speaks the step protocol."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .errors import GenaccelError
from .measure import StepClock, synced_now
from .profiling import phase
from .results import BatchResult  # re-exported: decoders import it from here


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
                   mark_of=lambda j: j) -> list[dict]:
    """Cut each row at its sample's length and first EOS (in place) and time it.

    ``times[mark_of(j)]`` is when token ``j`` was out (a decode step, or a speculative cycle).
    """
    records = []
    for row, sample in enumerate(batch):
        toks = outputs[row][: sample.max_new_tokens]
        if eos_id is not None and eos_id in toks:
            toks = toks[: toks.index(eos_id) + 1]
        outputs[row] = toks
        n = len(toks)
        latency = times[mark_of(n - 1)]
        records.append(
            {
                "id": sample.id,
                "input_tokens": len(sample.input_ids),
                "output_tokens": n,
                "latency_s": latency,
                "ttft_s": times[0],
                "tpot_s": (latency - times[0]) / (n - 1) if n > 1 else None,
            }
        )
    return records


def with_media(ctx, batch: Sequence, decode: Callable[[Sequence], BatchResult]) -> BatchResult:
    """``decode(batch)`` between the workload's media encoder and decoder, when it has them.

    A workload whose inputs or outputs are not tokens (images) defines ``media_phases``
    (names of its encode and decode phases, None where it has none; a tuple of names where the
    decode step enters several phases itself and returns their seconds beside the media),
    ``encode_inputs(batch) -> batch`` (inputs to
    tokens: the returned samples carry the final ``input_ids``), ``decode_outputs(batch,
    outputs) -> list`` (tokens to media) and ``save_outputs(batch, media, out_dir) -> list[dict]``
    (untimed; per-sample record fields such as ``files``).  Encode and decode count in every
    sample's latency (and encode in its time to first token) and are reported as phases.
    """
    inst = ctx.instance
    names = getattr(inst, "media_phases", None)
    if names is None:
        return decode(batch)
    dev = ctx.device
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
    save = getattr(inst, "save_outputs", None) if names[1] else None
    extras = save(batch, media, getattr(ctx.config, "out_dir", None)) if save else [{}] * len(batch)
    for rec, extra in zip(result.records, extras):
        rec["latency_s"] += encode_s + decode_s
        if rec.get("ttft_s") is not None:
            rec["ttft_s"] += encode_s
        rec.update(extra)
    result.latency_s += encode_s + decode_s
    result.phases = {**({names[0]: encode_s} if names[0] else {}), **result.phases, **decode_phases}
    return result


def greedy_pick(logits: torch.Tensor) -> torch.Tensor:
    return logits.argmax(dim=-1)


def top_p_pick(temperature: float, top_p: float, generator: torch.Generator) -> Callable:
    """Temperature + nucleus sampling, entirely on the device (no host sync per token)."""

    def pick(logits: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(logits.float() / temperature, dim=-1)
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        outside = sorted_probs.cumsum(-1) - sorted_probs > top_p
        sorted_probs = sorted_probs.masked_fill(outside, 0.0)
        # Exponential race: argmax(p / E) with E ~ Exp(1) draws from p, without a sync.
        race = torch.empty_like(sorted_probs).exponential_(1.0, generator=generator)
        choice = (sorted_probs / race).argmax(dim=-1, keepdim=True)
        return order.gather(-1, choice).squeeze(-1)

    return pick


def generate(
    model,
    batch: Sequence,
    pick: Callable[[torch.Tensor], torch.Tensor],
    *,
    device: str,
    pad_id: int,
    max_seq_len: int,
    eos_id: int | None = None,
    eos_check_every: int = 8,
) -> BatchResult:
    """Prefill the batch, then decode one token per step until every sample has its tokens.

    With ``eos_id`` a sample ends at its first EOS (checked every ``eos_check_every`` steps, the
    only host syncs of the loop); without it, sample ``i`` gets ``batch[i].max_new_tokens``.
    """
    ids, valid, steps = padded_prompts(batch, pad_id, device, max_seq_len)
    bsz, length = ids.shape
    model.setup(bsz, max_seq_len)
    out = torch.zeros((bsz, steps), dtype=torch.long, device=device)
    done = torch.zeros(bsz, dtype=torch.bool, device=device)
    pos = torch.tensor(length, dtype=torch.long, device=device)
    clock = StepClock(device)
    clock.start()
    with phase("prefill"):
        token = pick(model.prefill(ids, valid))
        out[:, 0] = token
    clock.mark()
    ran = 1
    for step in range(1, steps):
        if eos_id is not None:
            done |= token == eos_id
            if step % eos_check_every == 0 and bool(done.all()):
                break
        with phase("decode"):
            token = pick(model.decode(token, pos, length + step))  # reads positions < length + step
            out[:, step] = token
            pos += 1
        ran += 1
        clock.mark()
    times = clock.seconds()
    outputs = out[:, :ran].tolist()
    records = sample_records(batch, outputs, times, eos_id)
    decode_steps = ran - 1
    return BatchResult.from_clock(
        times,
        records=records,
        outputs=outputs,
        decode_steps=decode_steps,
        kv_tokens_read=bsz * sum(length + i for i in range(1, decode_steps + 1)),
    )
