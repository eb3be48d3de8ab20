"""Per-case deltas over a series of reports (``genaccel compare``): the first report is the reference,
each case's throughput in every report with its spread over repetitions, the change of the last against
the first, and whether it stands out of the noise; INVALID (contended) cases apart and never judged; the
environment differences that make a comparison doubtful.  The result is data (:func:`compare_series`),
printed as Markdown, CSV or JSON; :func:`regressions` is what ``--fail-above`` gates on."""

from __future__ import annotations

import json

from .formats import as_csv, as_json
from .results import upgrade
from .stats import noise
from .store import cases_of
from .tables import contended, fmt, per_s, table, throughput_of, throughput_spread

#: what makes two reports' environments differ, as (name, how to read it from an environment block)
ENVIRONMENT_KEYS = (("CPU", lambda e: e.get("cpu")), ("device", lambda e: e.get("device_name") or e.get("device")),
                    ("torch", lambda e: (e.get("versions") or {}).get("torch")),
                    ("git commit", lambda e: _commit(e.get("git"))))
MATCHED_BY = "workload, model, stack, decoder, batch size, device, dtype, lengths, samples and options"


def _commit(git) -> str | None:
    if not git or not git.get("commit"):
        return None
    return git["commit"][:12] + ("+dirty" if git.get("dirty") else "")


def case_key(c: dict) -> tuple:
    config = c.get("config") or {}
    return (c["workload"], c.get("preset") or c.get("checkpoint"), c.get("label"), c.get("batch_size"), c.get("device"),
            c.get("dtype"), c.get("seq_len"), c.get("decoder"), config.get("max_new_tokens"), config.get("samples"),
            json.dumps(config.get("workload_options") or config.get("options") or {}, sort_keys=True, default=str))


def _figures(c: dict) -> dict:
    s = c.get("summary") or {}
    spread = throughput_spread(c)
    return {"throughput_per_s": throughput_of(c), "sd": spread.get("sd"), "ci95": spread.get("ci95"),
            "repeats": spread.get("n"), "latency_mean_s": (s.get("latency_s") or {}).get("mean"), "unit": c.get("unit"),
            "invalid": bool(contended(c)), "spread": spread or None}


def compare_series(docs: list[dict], names: list[str]) -> dict:
    """Every case of the first report matched in the others; per case its figures in each report (None
    where absent), the last report's change against the first and the noise of that change."""
    docs = [upgrade(d) for d in docs]
    indexes = [{case_key(c): c for c in cases_of(d)} for d in docs]
    rows, left_out = [], []
    for key, first in indexes[0].items():
        found = [ix.get(key) for ix in indexes]
        if not any(found[1:]):
            left_out.append(f"{names[0]}: {first['workload']} {first.get('label')} bs{first.get('batch_size')}")
            continue
        figures = [_figures(c) if c else None for c in found]
        rows.append({"case": f"{first['workload']} {first['label']} bs{first['batch_size']}", "workload": first["workload"],
                     "label": first["label"], "batch_size": first.get("batch_size"), "unit": first.get("unit"),
                     "reports": figures, **_change(figures)})
    for name, ix in zip(names[1:], indexes[1:]):
        left_out += [f"{name}: {c['workload']} {c.get('label')} bs{c.get('batch_size')}" for k, c in ix.items()
                     if k not in indexes[0]]
    return {"reports": names, "rows": rows, "left_out": left_out, "environment_differences": environment_differences(docs, names)}


def _change(figures: list[dict | None]) -> dict:
    """The last report's change of throughput against the first's, its noise, and whether either was contended."""
    first, last = figures[0], next((f for f in reversed(figures[1:]) if f), None)
    invalid = bool(first["invalid"] or (last and last["invalid"]))
    if not (last and first["throughput_per_s"] and last["throughput_per_s"] and first["unit"] == last["unit"]):
        return {"change": None, "noise": None, "invalid": invalid}
    return {"change": last["throughput_per_s"] / first["throughput_per_s"] - 1,
            "noise": noise(first["spread"], last["spread"]), "invalid": invalid}


def environment_differences(docs: list[dict], names: list[str]) -> list[str]:
    """One line per fact (CPU, device, torch, git commit) in which a report's environment differs from the first's."""
    out = []
    base = docs[0].get("environment") or {}
    for name, doc in zip(names[1:], docs[1:]):
        env = doc.get("environment") or {}
        for what, read in ENVIRONMENT_KEYS:
            a, b = read(base), read(env)
            if a != b:
                out.append(f"{what} differs: {a or 'unrecorded'} ({names[0]}) vs {b or 'unrecorded'} ({name})")
    return out


def regressions(result: dict, fail_above: float) -> list[dict]:
    """Cases whose throughput fell by more than ``fail_above`` percent and by more than their noise; INVALID
    (contended) cases are never counted."""
    limit = fail_above / 100
    return [r for r in result["rows"] if not r["invalid"] and r["change"] is not None
            and -r["change"] > limit and -r["change"] > (r["noise"] or 0.0)]


def verdict(row: dict, fail_above: float | None) -> str:
    if row["invalid"]:
        return "INVALID (contended): not judged"
    change, noise_ = row["change"], row["noise"]
    if change is None:
        return "–"
    if fail_above is not None and row in regressions({"rows": [row]}, fail_above):
        return "REGRESSION"
    if noise_ is not None and abs(change) <= noise_:
        return f"within noise (±{noise_:.1%})"
    return "slower" if change < 0 else "faster" if change > 0 else "same"


def _cell(f: dict | None, first: dict | None) -> str:
    if not f or f["throughput_per_s"] is None:
        return "–"
    text = fmt(f["throughput_per_s"], ".1f") + (f" ± {f['sd']:.1f}" if f["sd"] is not None else "") + f" {per_s(f['unit'])}"
    if first is not f and first and first["throughput_per_s"] and f["unit"] == first["unit"]:
        text += f" ({f['throughput_per_s'] / first['throughput_per_s']:.2f}×)"
    return text + (" INVALID" if f["invalid"] else "")


def as_markdown(result: dict, fail_above: float | None = None) -> str:
    """The series as Markdown: the judged cases' table, the INVALID ones apart, what matched nothing."""
    names, letters = result["reports"], [chr(ord("A") + i) if i < 26 else f"R{i}" for i in range(len(result["reports"]))]
    header = ["case", *letters, f"Δ throughput {letters[-1]} vs A", "noise (95%)", "verdict"]
    judged = [r for r in result["rows"] if not r["invalid"]]
    invalid = [r for r in result["rows"] if r["invalid"]]

    def row(r):
        return [r["case"], *(_cell(f, r["reports"][0]) for f in r["reports"]),
                "–" if r["change"] is None else f"{r['change']:+.1%}",
                "–" if r["noise"] is None else f"±{r['noise']:.1%}", verdict(r, fail_above)]

    out = ["reports: " + "; ".join(f"{x} = {n}" for x, n in zip(letters, names)), ""]
    if not result["rows"]:
        out.append(f"no cases in common (cases match by {MATCHED_BY})")
    if judged:
        out += [table(header, [row(r) for r in judged]), ""]
    if invalid:
        out += ["INVALID (measured under contention in the first or last report; never counted as regressions):", "",
                table(header, [row(r) for r in invalid]), ""]
    if result["left_out"]:
        out.append(f"left out, no case of the other reports with the same {MATCHED_BY}: " + "; ".join(result["left_out"]))
    return "\n".join(out).rstrip()


def csv_rows(result: dict, fail_above: float | None = None) -> list[dict]:
    """One row per case and report: its figures, and the case's change, noise and verdict."""
    rows = []
    for r in result["rows"]:
        for name, f in zip(result["reports"], r["reports"]):
            f = f or {}
            ci = f.get("ci95") or (None, None)
            rows.append({"case": r["case"], "report": name, "throughput_per_s": f.get("throughput_per_s"),
                         "unit": f.get("unit"), "throughput_sd": f.get("sd"), "throughput_ci95_low": ci[0],
                         "throughput_ci95_high": ci[1], "repeats": f.get("repeats"), "latency_mean_s": f.get("latency_mean_s"),
                         "invalid": f.get("invalid"), "change_last_vs_first": r["change"], "noise": r["noise"],
                         "verdict": verdict(r, fail_above)})
    return rows


def render_comparison(result: dict, fmt_: str, fail_above: float | None = None) -> str:
    if fmt_ == "csv":
        return as_csv(csv_rows(result, fail_above))
    if fmt_ == "json":
        rows = [{**{k: v for k, v in r.items() if k != "reports"}, "verdict": verdict(r, fail_above),
                 "reports": [f and {k: v for k, v in f.items() if k != "spread"} for f in r["reports"]]}
                for r in result["rows"]]
        return as_json({**result, "rows": rows})
    return as_markdown(result, fail_above)


def compare(*docs: dict) -> str:
    """The Markdown comparison of reports A, B, ... (any supported schema version)."""
    return as_markdown(compare_series(list(docs), [chr(ord("A") + i) for i in range(len(docs))]))
