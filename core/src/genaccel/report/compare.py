"""Per-case deltas between reports (``genaccel compare``)."""

from __future__ import annotations

import json

from .results import upgrade
from .store import cases_of
from .tables import fmt, per_s, table


def compare(a: dict, b: dict) -> str:
    """Per-case deltas between two reports (of any supported version), matched by workload, model,
    stack, batch, device, dtype; throughputs are compared where both count the same unit."""
    a, b = upgrade(a), upgrade(b)

    def key(c):
        config = c.get("config") or {}
        return (c["workload"], c.get("preset") or c.get("checkpoint"), c.get("label"), c.get("batch_size"), c.get("device"),
                c.get("dtype"), c.get("seq_len"), c.get("decoder"), config.get("max_new_tokens"), config.get("samples"),
                json.dumps(config.get("workload_options") or config.get("options") or {}, sort_keys=True, default=str))

    index_b = {key(c): c for c in cases_of(b)}
    rows, left_out = [], []
    for ca in cases_of(a):
        cb = index_b.pop(key(ca), None)
        if cb is None:
            left_out.append(f"A: {ca['workload']} {ca.get('label')} bs{ca.get('batch_size')}")
            continue
        sa, sb = ca.get("summary") or {}, cb.get("summary") or {}
        la, lb = (sa.get("latency_s") or {}).get("mean"), (sb.get("latency_s") or {}).get("mean")
        ta, tb = sa.get("throughput_per_s"), sb.get("throughput_per_s")
        same_unit = ca.get("unit") == cb.get("unit")
        rows.append([
            f"{ca['workload']} {ca['label']} bs{ca['batch_size']}",
            fmt(la), fmt(lb), f"{(lb - la) / la:+.1%}" if la and lb else "–",
            f"{fmt(ta, '.1f')} {per_s(ca)}", f"{fmt(tb, '.1f')} {per_s(cb)}",
            f"{tb / ta:.2f}×" if ta and tb and same_unit else "–",
        ])
    left_out += [f"B: {c['workload']} {c.get('label')} bs{c.get('batch_size')}" for c in index_b.values()]
    note = ("\n\nleft out, no case of the other report with the same workload, model, stack, decoder, batch size, "
            "device, dtype, lengths, samples and options: " + "; ".join(left_out)) if left_out else ""
    if not rows:
        return ("no cases in common (cases match by workload, model, stack, decoder, batch size, device, dtype, "
                "lengths, samples and options)" + note)
    return table(["case", "latency A (s)", "latency B (s)", "Δ latency", "throughput A", "throughput B", "B/A throughput"],
                 rows) + note
