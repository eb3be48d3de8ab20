"""genaccel against llama.cpp, as llama-bench reports it: per model and precision pair (a genaccel
stack at a precision beside llama.cpp on the GGUF type of that precision, at the same prompt, new
tokens, batch and device), prompt processing (pp: the prompt's tokens over the time to the first
token) and token generation (tg: decoded tokens per second, after the prompt) of each engine as
mean ± sd over the rounds the bench alternated them in (``rounds = N``), the ratio
genaccel/llama.cpp of the means, and genaccel's decode MBU.  INVALID (contended) cases are left out,
as everywhere in the report.  Light: no torch."""

from __future__ import annotations

from ..plugin.specs import GGUF_PRECISION
from .results import case_label
from .stats import spread
from .tables import contended, fmt, gguf_type, pct, precision, table

HEADER = ["model", "precision (genaccel ↔ llama.cpp)", "genaccel stack", "test", "genaccel pp tok/s",
          "llama.cpp pp tok/s", "pp ×", "genaccel tg tok/s", "llama.cpp tg tok/s", "tg ×", "genaccel decode MBU",
          "rounds (genaccel/llama.cpp)"]
NOTE = ("pp: the prompt's tokens over the time to the first token; tg: decoded tokens per second after the prompt "
        "(llama-bench's tg starts from an empty context); each as mean ± sd over the bench's alternated rounds, "
        "× = genaccel / llama.cpp of the means. Both engines run greedily on the same weights and prompts with the "
        "same threads; llama.cpp's q4_0 and q4_K_M files are made by its own quantizer from the f32 export. "
        "INVALID (contended) rounds are left out.")


def _setting(case: dict) -> tuple:
    """What both engines of a pair share: workload, model, batch, prompt length, new tokens, device."""
    config = case.get("config") or {}
    return (case["workload"], case.get("preset") or case.get("checkpoint"), case.get("batch_size"),
            case.get("seq_len"), config.get("max_new_tokens"), case.get("device"))


def _stack(case: dict) -> str:
    """The case's label without its round: what its rounds share."""
    return case_label(case.get("optimizations") or (), decoder=case.get("decoder"),
                      skipped=[s["name"] for s in case.get("skipped_optimizations") or []],
                      tp=(case.get("config") or {}).get("tp", 1))


def _pp(case: dict) -> float | None:
    samples = [s for s in case.get("samples") or [] if s.get("ttft_s") and s.get("input_tokens")]
    seconds = sum(s["ttft_s"] for s in samples)
    return sum(s["input_tokens"] for s in samples) / seconds if seconds else None


def _figures(rounds: list[dict]) -> dict:
    """pp, tg and MBU of an engine's valid rounds (each a spread), and how many rounds were left out."""
    valid = [c for c in rounds if not contended(c)]
    summaries = [c.get("summary") or {} for c in valid]
    return {"stack": _stack(rounds[0]),
            "pp_tokens_per_s": spread([_pp(c) for c in valid]),
            "tg_tokens_per_s": spread([s.get("decode_tokens_per_s") for s in summaries]),
            "mbu": spread([s.get("mbu") for s in summaries]), "invalid": len(rounds) - len(valid)}


def _ratio(a: dict, b: dict) -> float | None:
    return a["mean"] / b["mean"] if a["mean"] and b["mean"] else None


def comparison(cases: list[dict]) -> list[dict]:
    """One row per setting, llama.cpp GGUF type and genaccel stack at that type's precision (each
    engine's measured rounds together): ``workload``, ``model``, ``batch_size``, ``prompt_tokens``,
    ``new_tokens``, ``device``, ``precision``, ``gguf_type``, ``genaccel`` and ``llama_cpp``
    (:func:`_figures`), and ``ratio`` (genaccel / llama.cpp) of ``pp`` and ``tg``."""
    ok = [c for c in cases if c.get("status") == "ok"]
    rows = []
    for ref in _by(c for c in ok if c.get("decoder") == "llama-cpp" and precision(c)):
        setting, kind = _setting(ref[0]), gguf_type(ref[0])
        ours = [c for c in ok if c.get("decoder") != "llama-cpp" and _setting(c) == setting
                and precision(c) == GGUF_PRECISION[kind]]
        theirs = _figures(ref)
        for stack in _by(ours):
            mine = _figures(stack)
            rows.append({**dict(zip(("workload", "model", "batch_size", "prompt_tokens", "new_tokens", "device"),
                                    setting)),
                         "precision": GGUF_PRECISION[kind], "gguf_type": kind, "genaccel": mine, "llama_cpp": theirs,
                         "ratio": {"pp": _ratio(mine["pp_tokens_per_s"], theirs["pp_tokens_per_s"]),
                                   "tg": _ratio(mine["tg_tokens_per_s"], theirs["tg_tokens_per_s"])}})
    return rows


def _by(cases) -> list[list[dict]]:
    """Cases grouped by setting, engine, GGUF type and stack (a pair's rounds together), in order of first appearance."""
    groups: dict[tuple, list[dict]] = {}
    for c in cases:
        key = (_setting(c), c.get("decoder"), gguf_type(c) if c.get("decoder") == "llama-cpp" else None, _stack(c))
        groups.setdefault(key, []).append(c)
    return list(groups.values())


def _mean_sd(s: dict, spec: str = ".1f") -> str:
    if s["mean"] is None:
        return "INVALID" if not s["n"] else "–"
    return fmt(s["mean"], spec) + (f" ± {fmt(s['sd'], spec)}" if s["sd"] is not None else "")


def comparison_rows(rows: list[dict]) -> list[list[str]]:
    """:func:`comparison` as table rows (:data:`HEADER`)."""
    out = []
    for r in rows:
        g, ll = r["genaccel"], r["llama_cpp"]
        mbu = g["mbu"]
        out.append([
            f"{r['workload']} {r['model']}", f"{r['precision']} ↔ {r['gguf_type']}", g["stack"],
            f"pp{r['prompt_tokens']} / tg{r['new_tokens']}" + (f" bs{r['batch_size']}" if r["batch_size"] != 1 else ""),
            _mean_sd(g["pp_tokens_per_s"]), _mean_sd(ll["pp_tokens_per_s"]), fmt(r["ratio"]["pp"], ".2f"),
            _mean_sd(g["tg_tokens_per_s"]), _mean_sd(ll["tg_tokens_per_s"]), fmt(r["ratio"]["tg"], ".2f"),
            pct(mbu["mean"]) + (f" ± {pct(mbu['sd'])}" if mbu["sd"] is not None else ""),
            f"{g['pp_tokens_per_s']['n']}/{ll['pp_tokens_per_s']['n']}"
            + (f" ({g['invalid'] + ll['invalid']} INVALID left out)" if g["invalid"] + ll["invalid"] else ""),
        ])
    return out


def comparison_markdown(cases: list[dict]) -> list[str]:
    """The report's section "genaccel against llama.cpp" (no lines when no case ran llama.cpp)."""
    rows = comparison(cases)
    if not rows:
        return []
    return ["## genaccel against llama.cpp", "", table(HEADER, comparison_rows(rows)), "", NOTE, ""]
