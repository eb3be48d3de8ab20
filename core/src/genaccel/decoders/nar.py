"""The ``nar`` decoder: non-autoregressive work, one forward per batch (role ``BatchRunner``)."""

from __future__ import annotations

import torch

from ..plugin.batch import BatchResult


class NonAutoregressive:
    """One forward per batch, no token loop.

    Calls ``ctx.instance.run_batch(batch)`` (role ``BatchRunner``), which returns ``{"outputs": [...], "records": [...],
    "phases": {name: seconds}, "model_s": seconds}``: per-sample outputs and extra fields, the time of
    each phase, and the model time (what the sample latency reports; phases outside it, such as an
    embedding lookup the study excludes, are reported apart).  A sample's units of work are what its
    record says (``units``; HSTU: its ranked or scored items), else one per sample.
    """

    def __init__(self, **options):
        self.options = options

    @torch.no_grad()
    def run(self, ctx, batch) -> BatchResult:
        result = ctx.instance.run_batch(batch)
        latency = result["model_s"]
        records = [
            {"id": s.id, **{f"input_{k}": v for k, v in s.input_lengths.items()}, "input_tokens": sum(s.input_lengths.values()),
             "output_tokens": len(out), "latency_s": latency, "ttft_s": None, "tpot_s": None,
             **extra}
            for s, out, extra in zip(batch, result["outputs"], result.get("records") or [{}] * len(batch))
        ]
        return BatchResult(records=records, outputs=result["outputs"], latency_s=latency, phases=result.get("phases", {}))
