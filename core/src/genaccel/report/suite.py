"""The suite "all together" (Lee et al. 2024, "Putting It Altogether"): per workload group of a report, the
best lossless stack and the best stack of all (lossy ones included) over that group's baseline, and the
geometric mean of each over the suite, set against the study's average of 3.88× (A100, every lever combined,
AutoQuant and LayerSkip among them)."""

from __future__ import annotations

import math

from ..plugin.specs import REFERENCE_DECODERS
from .tables import contended, group_cases, throughput_of

STUDY_ALL_TOGETHER = 3.88
SUITE_NOTE = ("Study: Lee et al. 2024 ('Putting It Altogether'): SDPA, torch.compile, CUDA graphs, AutoQuant and "
              f"LayerSkip together improve inference by an average of {STUDY_ALL_TOGETHER:.2f}× over their suite "
              "(A100). Here each group's best stack of those the report measured, over the group's own baseline; "
              "INVALID (contended) cases are left out, and a group without a valid baseline is not counted.")


def _best(stacks: list[dict], base_tps: float) -> dict | None:
    best = max(stacks, key=throughput_of, default=None)
    return best and {"stack": best["label"], "speedup": throughput_of(best) / base_tps}


def suite_rows(cases: list[dict]) -> list[dict]:
    """Per group with a measured, uncontended baseline and at least one other stack: ``workload``, ``model``,
    ``batch_size``, ``device``, ``lossless`` (best lossless stack and its speedup, or None) and ``any`` (the best
    of every stack, lossy ones included)."""
    rows = []
    for (workload, model, bs, device, dtype, seq_len), group in group_cases(cases).items():
        ok = [c for c in group if c.get("status") == "ok" and c.get("decoder") not in REFERENCE_DECODERS
              and throughput_of(c) and not contended(c)]
        base = next((c for c in ok if not c.get("optimizations")), None)
        stacks = [c for c in ok if c is not base]
        if base is None or not stacks:
            continue
        rows.append({"workload": workload, "model": str(model), "batch_size": bs, "seq_len": seq_len,
                     "device": f"{device} {dtype}", "baseline": base["label"],
                     "lossless": _best([c for c in stacks if c.get("lossless") is not False], throughput_of(base)),
                     "any": _best(stacks, throughput_of(base))})
    return rows


def geomean(values: list[float]) -> float | None:
    """The geometric mean of positive values, None for none."""
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def suite_summary(cases: list[dict]) -> dict | None:
    """``rows`` (:func:`suite_rows`) and the geometric means ``lossless`` and ``any`` over them (each over the
    groups that have such a stack, with its count ``n_lossless``/``n_any``); None when fewer than two groups
    qualify (one group's best stack is its own ablation's)."""
    rows = suite_rows(cases)
    if len(rows) < 2:
        return None
    lossless = [r["lossless"]["speedup"] for r in rows if r["lossless"]]
    best = [r["any"]["speedup"] for r in rows if r["any"]]
    return {"rows": rows, "lossless": geomean(lossless), "n_lossless": len(lossless), "any": geomean(best),
            "n_any": len(best), "study": STUDY_ALL_TOGETHER}


def _cell(best: dict | None) -> str:
    return f"{best['speedup']:.2f}× ({best['stack']})" if best else "–"


SUITE_HEADER = ["workload", "model", "batch", "device", "best lossless × baseline", "best of all × baseline"]


def suite_table_rows(summary: dict) -> list[list[str]]:
    """The summary's rows as table cells, then the geometric-mean row."""
    rows = [[r["workload"], r["model"], str(r["batch_size"]) + (f", {r['seq_len']} tokens" if r["seq_len"] else ""),
             r["device"], _cell(r["lossless"]), _cell(r["any"])] for r in summary["rows"]]
    mean = [f"{summary[k]:.2f}× over {summary['n_' + k]} groups" if summary[k] else "–" for k in ("lossless", "any")]
    return rows + [["geometric mean", "", "", "", *mean]]


def suite_headline(summary: dict) -> str:
    """One line: the two geometric means beside the study's."""
    fmt = {k: f"{summary[k]:.2f}×" if summary[k] else "–" for k in ("lossless", "any")}
    return (f"All together: geometric mean of each group's best stack over its baseline {fmt['any']} "
            f"(lossless stacks only: {fmt['lossless']}) over {len(summary['rows'])} groups; "
            f"the study's average: {STUDY_ALL_TOGETHER:.2f}× (A100).")
