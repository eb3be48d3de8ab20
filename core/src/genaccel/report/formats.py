"""A command's results as data: one record of numbers per case (what the Markdown tables show, unrounded),
printed as Markdown (the tables), CSV or JSON (``--format``).  Light: no torch."""

from __future__ import annotations

import csv
import io
import json

from .tables import contended, group_cases, speedups, throughput_of, throughput_spread

FORMATS = ("md", "csv", "json")


def case_record(case: dict, speedup: tuple | None = None) -> dict:
    """A case's figures, flat: latency, throughput with its spread over repetitions, token rates, MBU,
    memory, its speedup over its group's baseline and previous step, and whether it was contended."""
    s = case.get("summary") or {}
    lat = s.get("latency_s") or {}
    spread = throughput_spread(case)
    ci = spread.get("ci95") or (None, None)
    peak = s.get("peak_memory_bytes")
    return {
        "workload": case.get("workload"), "label": case.get("label"), "status": case.get("status"),
        "error": case.get("error"), "batch_size": case.get("batch_size"), "device": case.get("device"),
        "dtype": case.get("dtype"), "seq_len": case.get("seq_len"),
        "latency_mean_s": lat.get("mean"), "latency_p50_s": lat.get("p50"), "latency_p90_s": lat.get("p90"),
        "ttft_mean_s": (s.get("ttft_s") or {}).get("mean"),
        "unit": case.get("unit"), "throughput_per_s": throughput_of(case), "repeats": spread.get("n"),
        "throughput_sd": spread.get("sd"), "throughput_ci95_low": ci[0], "throughput_ci95_high": ci[1],
        "output_tokens_per_s": s.get("output_tokens_per_s"), "decode_tokens_per_s": s.get("decode_tokens_per_s"),
        "mbu": s.get("mbu"), "mbu_p50": s.get("mbu_p50"), "peak_memory_mib": peak / 2**20 if peak else None,
        "speedup_vs_baseline": speedup[0] if speedup else None, "speedup_vs_previous": speedup[1] if speedup else None,
        "invalid": bool(contended(case)),
    }


def case_records(cases: list[dict]) -> list[dict]:
    """Every case's record, its speedups taken within its group (workload, model, batch, device, dtype, length)."""
    ratios = {}
    for group in group_cases(cases).values():
        ratios.update({id(c): (x_base, x_prev) for c, _, x_base, x_prev in speedups(group)})
    return [case_record(c, ratios.get(id(c))) for c in cases]


def as_csv(rows: list[dict]) -> str:
    """Rows of one shape as CSV with a header (empty cells for None)."""
    if not rows:
        return ""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().rstrip("\n")


def as_json(data) -> str:
    return json.dumps(data, indent=1, default=str)


def render_records(rows: list[dict], fmt: str, key: str = "cases") -> str:
    """``rows`` as CSV, or as JSON under ``key``."""
    return as_csv(rows) if fmt == "csv" else as_json({key: rows})
