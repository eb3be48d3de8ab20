"""The study's tables beside genaccel's figures: Table II of Golden et al. 2024 (Flash Attention's
end-to-end speedup), set against ``sdpa`` over the baseline for each workload in a report."""

from __future__ import annotations

from ..plugin.specs import REFERENCE_DECODERS
from .tables import contended, group_cases, throughput_of

#: our workload, in the table's order → the study's model and its figure
STUDY_SDPA_SPEEDUP = {"llama/t-t": ("LLaMA", 1.52), "imagen/t-i": ("Imagen", 1.22),
                      "stable-diffusion/t-i": ("StableDiffusion", 1.67), "muse/t-i": ("Muse", 1.11),
                      "parti/t-i": ("Parti", 1.17), "make-a-video/t-v": ("MakeAVideo", 1.06),
                      "phenaki/t-v": ("Phenaki", 1.15)}
STUDY_SDPA_NOTE = ("Study: Golden et al. 2024, Table II (Flash Attention over baseline attention, end to end, A100); "
                   "workloads it has no column for (chameleon/t-i among them) are reported as themselves. Lee et al. 2024 "
                   "give SDPA's speedup for Llama and Chameleon only as bars (Fig. 5); over their suite it averages "
                   "1.07× at batch 1 and 1.43× at the largest batch.")


def sdpa_speedups(cases: list[dict]) -> list[dict]:
    """Table II form: per workload, model and batch, the end-to-end speedup of ``sdpa`` alone over the
    baseline (both cases in the report), beside the study's value (its model's name and speedup, or None); the
    study's workloads first, in its order.  A pair either of whose cases was contended keeps its row with
    ``speedup`` None: a ratio from a contended case is no figure."""
    found = []
    for (workload, model, bs, device, dtype, _), group in group_cases(cases).items():
        ok = [c for c in group if c.get("status") == "ok" and c.get("decoder") not in REFERENCE_DECODERS]
        base = next((c for c in ok if not c.get("optimizations")), None)
        sdpa = next((c for c in ok if c.get("optimizations") == ["sdpa"]), None)
        if not (base and sdpa and throughput_of(base) and throughput_of(sdpa)):
            continue
        study = STUDY_SDPA_SPEEDUP.get(workload)
        bad = contended(base) or contended(sdpa)
        found.append({"workload": workload, "model": str(model), "batch_size": bs, "device": f"{device} {dtype}",
                      "speedup": None if bad else throughput_of(sdpa) / throughput_of(base),
                      "study_model": study and study[0], "study_speedup": study and study[1]})
    order = list(STUDY_SDPA_SPEEDUP)
    return sorted(found, key=lambda r: order.index(r["workload"]) if r["workload"] in order else len(order))


def speedup_text(row: dict) -> str:
    """A row's ``sdpa / baseline`` cell: the ratio, or why there is none."""
    return "INVALID (contended)" if row["speedup"] is None else f"{row['speedup']:.2f}×"


def study_text(row: dict) -> str:
    """A row's study cell: the study's speedup and model, or a dash where it has none."""
    return f"{row['study_speedup']:.2f}× ({row['study_model']})" if row["study_model"] else "–"


def sdpa_speedup_rows(cases: list[dict]) -> list[list[str]]:
    """:func:`sdpa_speedups` as Markdown rows."""
    return [[r["workload"], r["model"], str(r["batch_size"]), r["device"], speedup_text(r), study_text(r)]
            for r in sdpa_speedups(cases)]
