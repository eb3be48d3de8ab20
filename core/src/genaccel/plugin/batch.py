"""What a decoder returns for one batch (:class:`BatchResult`): the decoder's side of the contract,
turned into sample records and a case by the run (:mod:`genaccel.report.results`).  Light: no torch."""

from __future__ import annotations

import attrs


@attrs.define(kw_only=True)
class BatchResult:
    """What a decoder returns for one batch."""

    records: list[dict]  # one per sample, JSON-ready (id, input_tokens, output_tokens, latency_s, ...)
    outputs: list[list[int]]  # generated token ids per sample
    latency_s: float
    prefill_s: float = 0.0
    decode_s: float = 0.0
    decode_steps: int = 0
    kv_tokens_read: int = 0  # sum over decode steps of cached positions attended (all rows)
    weight_passes: int = 1  # forwards per decode step that read every weight (2: unbatched guidance)
    # an engine that reads its own copy of the weights (llama.cpp's GGUF export): its bytes per decode
    # step and KV bytes per cached position, in place of the module's
    weight_bytes_per_step: int | None = None
    kv_bytes_per_token: int | None = None
    step_s: list[float] = attrs.field(factory=list)  # duration of each decode step
    phases: dict[str, float] = attrs.field(factory=dict)
    extra: dict = attrs.field(factory=dict)

    @classmethod
    def from_clock(cls, times: list[float], *, phases: dict | None = None, **fields) -> BatchResult:
        """Latency, prefill, decode and per-step times from a ``StepClock``'s marks (the first is
        prefill's); phases default to prefill and decode."""
        decode = times[-1] - times[0]
        return cls(latency_s=times[-1], prefill_s=times[0], decode_s=decode, step_s=[b - a for a, b in zip(times, times[1:])],
                   phases=phases or {"prefill": times[0], "decode": decode}, **fields)
