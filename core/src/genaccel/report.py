"""Reports: one JSON document per run (written after every case), rendered to Markdown and PNG.

The document's shape is :class:`genaccel.results.ReportDoc` (``report-v2.schema.json``); the
readers here take its JSON form, of any supported version (see :func:`genaccel.results.upgrade`).
Throughput is in each workload's unit of work (tokens, items, images, frames per second).
"""

from __future__ import annotations

import json
from pathlib import Path

from .registry import REFERENCE_DECODERS
from .results import SCHEMA_VERSION, CaseResult, plural, upgrade

__all__ = ["SCHEMA_VERSION", "write_json", "load", "Report", "render", "compare", "speedup_table"]


def write_json(path: Path, doc: dict) -> None:
    """Write atomically, so an interrupted run never leaves a half-written report."""
    from .files import write_json as write

    write(path, json.loads(json.dumps(doc, default=_jsonable)))


def _jsonable(obj):
    """Typed results through their serializer; anything else (paths ...) as text."""
    return obj.to_dict() if isinstance(obj, CaseResult) else str(obj)


def load(path: Path) -> dict:
    from .errors import GenaccelError
    from .files import read_json_object

    doc = read_json_object(Path(path), "report")
    try:
        doc = upgrade(doc)
    except GenaccelError as e:
        raise GenaccelError(f"report {str(path)!r} has {e}") from None
    cases = doc.get("cases", [doc] if "workload" in doc else None)
    if not isinstance(cases, list) or not all(isinstance(c, dict) and "workload" in c for c in cases):
        raise GenaccelError(f"report {str(path)!r} has no cases: give a report.json written by genaccel run, ablate "
                            "or bench")
    return doc


def cases_of(doc: dict) -> list[dict]:
    return doc["cases"] if "cases" in doc else [doc]


class Report:
    """A multi-case report (ablate, bench) kept on disk as it grows."""

    def __init__(self, out_dir: Path, kind: str, environment: dict, config: dict, cases=()):
        self.dir = Path(out_dir)
        self.doc = {"schema_version": SCHEMA_VERSION, "kind": kind, "environment": environment, "config": config,
                    "cases": list(cases)}
        self.save()

    def add(self, case: CaseResult) -> None:
        self.doc["cases"].append(case.to_dict())
        self.save()

    def save(self) -> None:
        write_json(self.dir / "report.json", self.doc)


# --- rendering ------------------------------------------------------------------------------


def _fmt(x, spec=".3f", none="–"):
    return none if x is None else format(x, spec)


def _mib(x):
    return "–" if not x else f"{x / 2**20:,.0f}"


def _throughput(case: dict):
    return (case.get("summary") or {}).get("throughput_per_s")


def _per_s(case_or_unit) -> str:
    unit = case_or_unit if isinstance(case_or_unit, str) else case_or_unit.get("unit") or "token"
    return f"{plural(unit)}/s"


def contended(case: dict) -> list[str]:
    """Why a case was measured while other processes competed for its cores (empty: it ran alone)."""
    return ((case.get("summary") or {}).get("contention") or {}).get("reasons") or []


def _label(case: dict) -> str:
    """A case's label in tables, marked INVALID when it was measured under contention (as MLPerf marks a run)."""
    return case["label"] + (" **INVALID: contended**" if contended(case) else "")


_MBU_SOURCE = {"reference": "ref", "probe before": "probe", "probe after": "probe"}


def _mbu(s: dict, key: str) -> str:
    """An MBU cell: the figure, capped marks (≥) and which bandwidth it used."""
    if s.get(key) is None:
        return "–"
    source = _MBU_SOURCE.get((s.get("mbu_bandwidth") or {}).get("source"), "")
    return ("≥" if s.get(f"{key}_uncapped") else "") + _pct(s[key]) + (f" ({source})" if source else "")


def case_row(case: dict) -> list[str]:
    s = case.get("summary") or {}
    lat = s.get("latency_s") or {}
    if case.get("status") != "ok":
        return [case["label"], str(case.get("batch_size") or "–"), f"**{case['status']}**: {case.get('error') or ''}"] + [""] * 9
    return [
        _label(case),
        str(case["batch_size"]),
        _fmt(lat.get("mean")),
        _fmt(lat.get("p50")),
        _fmt(lat.get("p90")),
        _fmt((s.get("ttft_s") or {}).get("mean")),
        _fmt(_throughput(case), ".1f") + (" " + _per_s(case) if _throughput(case) is not None else ""),
        _fmt(s.get("output_tokens_per_s"), ".1f"),
        _fmt(s.get("decode_tokens_per_s"), ".1f"),
        _mbu(s, "mbu"),
        _mbu(s, "mbu_p50"),
        _mib(s.get("peak_memory_bytes")),
    ]


def _pct(x):
    return "–" if x is None else f"{100 * x:.0f}%"


CASE_HEADER = ["stack", "batch", "latency mean (s)", "p50", "p90", "TTFT (s)", "throughput", "tok/s", "decode tok/s",
               "MBU", "MBU p50 step", "peak MiB"]


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def environment_md(env: dict) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items() if v)
    bw = env.get("memory_bandwidth_bytes_per_s")
    out = f"- device: {env.get('device')} — {env.get('device_name')}\n- versions: {versions}\n"
    if bw:
        probe = env.get("memory_bandwidth_probe_bytes_per_s")
        now = f" (this run measured {probe / 1e9:.1f})" if probe else ""
        out += (f"- memory bandwidth, MBU's reference (the best measured on this machine): {bw / 1e9:.1f} GB/s{now}; "
                "each case's MBU is over the highest of it and the case's own probes (before and after), at most 100%\n")
    return out


def _db(x) -> str:
    return "∞ (equal)" if x is None else f"{x:.2f} dB"


def _media_quality(acc: dict) -> str:
    """One line on the images' (PSNR, SSIM) or waveforms' (SNR) difference from the reference."""
    if "snr_db" in acc:
        return (f"audio (vs the unoptimized model's waveforms): SNR {_db(acc['snr_db'])} (lowest "
                f"{_db(acc['min_snr_db'])}), same length {acc['same_length_rate']:.0%}; per sample "
                + ", ".join(f"{r['id']}: {_db(r['snr_db'])}" for r in acc["samples"]))
    return (f"image quality (vs the unoptimized model's images): PSNR {_db(acc['psnr_db'])}, SSIM {acc['ssim']:.4f}; "
            "per sample " + ", ".join(f"{r['id']}: {_db(r['psnr_db'])} / {r['ssim']:.3f}" for r in acc["samples"]))


def case_details(case: dict) -> str:
    parts = []
    if case.get("skipped_optimizations"):
        parts.append("skipped: " + "; ".join(f"`{s['name']}` ({s['reason']})" for s in case["skipped_optimizations"]))
    for name, note in (case.get("optimization_notes") or {}).items():
        if isinstance(note, dict):
            note = note.get("summary")
        if note:
            parts.append(f"`{name}`: {note}")
    acc = case.get("accuracy")
    if acc and ("ssim" in acc or "snr_db" in acc):
        parts.append(_media_quality(acc))
    elif acc and "mean_kl" not in acc:
        parts.append(f"accuracy impact (vs the unoptimized model): output agreement {acc['token_agreement']:.1%}, "
                     f"set overlap {acc['set_overlap']:.1%}, exact {acc['exact_match_rate']:.0%}")
    elif acc:
        parts.append(
            f"accuracy impact (vs {acc.get('reference') or 'greedy decoding of the unoptimized model'}): "
            f"token agreement {acc['token_agreement']:.1%}, "
            f"exact {acc['exact_match_rate']:.0%}, teacher-forced top-1 {acc['teacher_forced_top1_agreement']:.1%}, "
            f"mean KL {acc['mean_kl']:.2e}, perplexity {acc['reference_perplexity']:.2f} → {acc['perplexity']:.2f}"
        )
    if acc and acc.get("decoded"):  # the images or speech that the outputs decode to
        parts.append(_media_quality(acc["decoded"]))
    spec = case.get("speculative")
    if spec and spec.get("cycles"):
        parts.append(
            f"self-speculative: exit layer {spec['exit_layer']}, draft length {spec['draft_len']}; acceptance "
            f"{spec['acceptance_rate']:.1%}, {spec['tokens_per_cycle']:.2f} tokens per cycle; time in draft "
            f"{spec['draft_share']:.0%}, verify {spec['verify_share']:.0%}"
        )
    s = case.get("summary") or {}
    if contended(case):
        parts.append("**INVALID: measured under contention**, no headline ratio drawn from it: " + "; ".join(contended(case)))
    bw = s.get("mbu_bandwidth")
    if bw and bw.get("bytes_per_s"):
        probes = "/".join(_fmt(p and p / 1e9, ".1f") for p in (bw.get("probe_before_bytes_per_s"),
                                                                bw.get("probe_after_bytes_per_s")))
        capped = "; capped at 100% (uncapped " + _pct(s["mbu_uncapped"]) + ")" if s.get("mbu_uncapped") else ""
        parts.append(f"MBU over {bw['bytes_per_s'] / 1e9:.1f} GB/s, the {bw['source']} (reference "
                     f"{_fmt(bw.get('reference_bytes_per_s') and bw['reference_bytes_per_s'] / 1e9, '.1f')}, "
                     f"probes before/after {probes} GB/s){capped}")
    if s.get("compile_s"):
        parts.append(f"compile (first warm-up minus last): {s['compile_s']:.1f} s")
    return "\n".join(f"  - {p}" for p in parts)


def speedup_rows(cases: list[dict]) -> list[list[str]]:
    """Rows of an ablation: each stack's throughput (the workload's units per second) against the
    baseline and the previous step."""
    rows, base, prev = [], None, None
    for case in cases:
        tps = _throughput(case)
        if case.get("decoder") in REFERENCE_DECODERS or not tps:
            continue
        base = base or tps
        mark = " INVALID: contended" if contended(case) else ""
        rows.append([case["label"], _fmt(tps, ".1f"), f"{tps / base:.2f}×{mark}", f"{tps / prev:.2f}×{mark}" if prev else "–"])
        prev = tps
    return rows


def _phases(case: dict) -> dict:
    """A case's seconds per phase, when it has more than a text decoder's prefill and decode."""
    phases = (case.get("summary") or {}).get("phase_s") or {}
    return phases if len(phases) >= 2 and set(phases) != {"prefill", "decode"} else {}


def phase_table(cases: list[dict]) -> str:
    """Seconds per phase (a cascade's stages, text encoder, decoders ...) over each case's timed batches, and
    each phase's share of their sum, one row per case; empty when no case has phases of its own."""
    shown = [c for c in cases if c.get("status") == "ok" and _phases(c)]
    names = list(dict.fromkeys(name for c in shown for name in _phases(c)))
    if not shown:
        return ""
    rows = []
    for c in shown:
        phases = _phases(c)
        total = sum(phases.values()) or 1.0
        rows.append([c["label"], *(f"{phases[n]:.3f} ({phases[n] / total:.0%})" if n in phases else "–" for n in names)])
    return table(["stack", *(f"{n} s (share)" for n in names)], rows)


def speedup_table(cases: list[dict]) -> str:
    """An ablation's speedup table, in the unit of its (first measured) workload."""
    cases = upgrade({"schema_version": SCHEMA_VERSION, "kind": "ablate", "cases": cases})["cases"]
    unit = next((c for c in cases if _throughput(c)), {"unit": "token"})
    return table(["stack", _per_s(unit), "× baseline", "× previous step"], speedup_rows(cases))


def _plot_label(case: dict) -> str:
    """A bar's name: the whole stack on one line (the bars lie horizontally, one label per row, so
    every stack stays readable however many steps it has), marked when measured under contention."""
    return case["label"].replace("+", " + ") + ("  [INVALID: contended]" if contended(case) else "")


def plot_speedups(cases: list[dict], path: Path, title: str) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [c for c in cases if _throughput(c)]
    steps = [c for c in ok if c.get("decoder") not in REFERENCE_DECODERS]
    if not steps:
        return None
    base = _throughput(steps[0])
    values = [_throughput(c) / base for c in ok]
    colors = ["#999999" if c.get("decoder") in REFERENCE_DECODERS else "#3b75af" for c in ok]
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.45 * len(ok)))
    bars = ax.barh(range(len(ok)), values, color=colors)
    for bar, val, case in zip(bars, values, ok):
        if contended(case):
            bar.set_hatch("//")
            bar.set_alpha(0.5)
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {val:.2f}×", ha="left", va="center", fontsize=8)
    ax.axvline(1.0, color="black", lw=0.8)
    ax.set_yticks(range(len(ok)), [_plot_label(c) for c in ok], fontsize=8)
    ax.invert_yaxis()  # the first case on top
    ax.set_xlim(0, max(values) * 1.15)
    ax.set_xlabel(f"speedup over baseline ({_per_s(steps[0])})")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_latency(cases: list[dict], path: Path, title: str) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [c for c in cases if c.get("samples")]
    if not ok:
        return None
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.45 * len(ok)))
    data = [[r["latency_s"] for r in c["samples"]] for c in ok]
    ax.boxplot(data, showfliers=False, vert=False)
    for i, vals in enumerate(data, start=1):
        ax.scatter(vals, [i] * len(vals), s=10, alpha=0.6, color="#d1603d", zorder=3)
    ax.set_yticks(range(1, len(ok) + 1), [_plot_label(c) for c in ok], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("per-sample latency (s)")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_sweep(cases: list[dict], path: Path, title: str) -> Path | None:
    """Latency and activation memory against sequence length, one line per stack."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [c for c in cases if c.get("status") == "ok" and c.get("seq_len")]
    if len({c["seq_len"] for c in ok}) < 2:
        return None
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for label in dict.fromkeys(c["label"] for c in ok):
        pts = sorted((c["seq_len"], c["summary"]["latency_s"]["mean"], c["summary"].get("peak_memory_increase_bytes") or 0)
                     for c in ok if c["label"] == label)
        xs = [p[0] for p in pts]
        ax1.plot(xs, [p[1] for p in pts], marker="o", label=label)
        ax2.plot(xs, [p[2] / 2**20 for p in pts], marker="o", label=label)
    for ax, ylabel in ((ax1, "mean latency (s)"), (ax2, "peak memory increase (MiB)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("sequence length")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    ax1.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def sweep_rows(cases: list[dict]) -> list[list[str]]:
    """Per sequence length: each stack's latency and memory, and its speedup over the first stack."""
    rows, base = [], {}
    for c in sorted((c for c in cases if c.get("status") == "ok" and c.get("seq_len")), key=lambda c: c["seq_len"]):
        s = c["summary"]
        lat, mem = s["latency_s"]["mean"], s.get("peak_memory_increase_bytes") or 0
        b = base.setdefault(c["seq_len"], (lat, mem))
        measurable = min(mem, b[1]) >= 2**20  # a ratio of sub-MiB growths is noise
        rows.append([str(c["seq_len"]), c["label"], _fmt(lat), f"{b[0] / lat:.2f}×", _mib(mem),
                     f"{b[1] / mem:.1f}×" if measurable else "–"])
    return rows


def _group(cases):
    groups: dict[tuple, list[dict]] = {}
    for c in cases:
        key = (c["workload"], c.get("preset") or c.get("checkpoint"), c["batch_size"], c["device"], c["dtype"],
               c.get("seq_len"))
        groups.setdefault(key, []).append(c)
    return groups


#: the study's Table II (Golden et al. 2024, A100): end-to-end speedup of Flash Attention over baseline attention, by
#: our workload, in the table's order (chameleon/t-i, autoregressive image tokens, against Parti, the study's
#: autoregressive text-to-image model)
STUDY_SDPA_SPEEDUP = {"llama/t-t": ("LLaMA", 1.52), "imagen/t-i": ("Imagen", 1.22),
                      "stable-diffusion/t-i": ("StableDiffusion", 1.67), "muse/t-i": ("Muse", 1.11),
                      "chameleon/t-i": ("Parti", 1.17), "make-a-video/t-v": ("MakeAVideo", 1.06)}
STUDY_SDPA_NOTE = ("Study: Golden et al. 2024, Table II (Flash Attention over baseline attention, end to end, A100); "
                   "chameleon/t-i is set beside Parti, the study's autoregressive text-to-image model. Lee et al. 2024 "
                   "give SDPA's speedup for Llama and Chameleon only as bars (Fig. 5); over their suite it averages "
                   "1.07× at batch 1 and 1.43× at the largest batch.")


def sdpa_speedup_rows(cases: list[dict]) -> list[list[str]]:
    """Table II form: per workload, model and batch, the end-to-end speedup of ``sdpa`` alone over the
    baseline (both cases in the report), beside the study's value; the study's workloads first, in its order."""
    rows = []
    for (workload, model, bs, device, dtype, _), group in _group(cases).items():
        ok = [c for c in group if c.get("status") == "ok" and c.get("decoder") not in REFERENCE_DECODERS]
        base = next((c for c in ok if not c.get("optimizations")), None)
        sdpa = next((c for c in ok if c.get("optimizations") == ["sdpa"]), None)
        if not (base and sdpa and _throughput(base) and _throughput(sdpa)):
            continue
        study = STUDY_SDPA_SPEEDUP.get(workload)
        rows.append([workload, str(model), str(bs), f"{device} {dtype}", f"{_throughput(sdpa) / _throughput(base):.2f}×",
                     f"{study[1]:.2f}× ({study[0]})" if study else "–"])
    order = list(STUDY_SDPA_SPEEDUP)
    return sorted(rows, key=lambda r: order.index(r[0]) if r[0] in order else len(order))  # stable within a workload


def render(doc: dict, out_dir: Path) -> Path:
    """Write report.md and PNG plots next to report.json; returns the Markdown path."""
    out_dir = Path(out_dir)
    doc = upgrade(doc)
    cases = cases_of(doc)
    env = doc.get("environment", {})
    lines = [f"# genaccel {doc.get('kind', 'run')} report", "", environment_md(env)]
    invalid = [c for c in cases if contended(c)]
    if invalid:
        lines += [f"**{len(invalid)} of {len(cases)} cases were measured while other processes competed for their "
                  "cores and are marked INVALID**; no headline ratio is drawn from them.", ""]
    sweeps: dict[tuple, list[dict]] = {}
    for c in cases:
        if c.get("seq_len"):
            sweeps.setdefault((c["workload"], c.get("preset"), c["batch_size"], c["device"], c["dtype"]), []).append(c)
    for j, (key, group) in enumerate(sweeps.items()):
        rows = sweep_rows(group)
        if len({r[0] for r in rows}) < 2:
            continue
        title = f"{key[0]} · {key[1]} · batch {key[2]} · {key[3]} {key[4]}: sequence-length sweep"
        lines += [f"## {title}", "", table(["seq len", "stack", "latency (s)", "speedup", "peak mem increase (MiB)",
                                            "memory ratio"], rows), ""]
        png = plot_sweep(group, out_dir / f"sweep-{j:02d}-{key[0].replace('/', '-')}-bs{key[2]}.png", title)
        if png:
            lines += [f"![sweep]({png.name})", ""]
    for i, (key, group) in enumerate(_group(cases).items()):
        workload, model, bs, device, dtype, seq_len = key
        title = " · ".join(str(p) for p in (workload, model, bs and f"batch {bs}", device and f"{device} {dtype}",
                                            seq_len and f"{seq_len} tokens") if p)  # a case not run lacks some
        lines += [f"## {title}", "", table(CASE_HEADER, [case_row(c) for c in group]), ""]
        phases = phase_table(group)
        if phases:
            lines += ["Time by phase:", "", phases, ""]
        rows = speedup_rows(group)
        if len(rows) > 1:
            lines += [table(["stack", _per_s(group[0]), "× baseline", "× previous step"], rows), ""]
            best = max((c for c in group if c.get("status") == "ok" and c.get("decoder") not in REFERENCE_DECODERS),
                       key=lambda c: _throughput(c) or 0, default=None)
            for decoder, engine in (("hf-generate", "transformers' generate"), ("diffusers-pipeline", "diffusers' pipeline"),
                                    ("llama-cpp", "llama.cpp")):
                ref = next((c for c in group if c.get("decoder") == decoder and c.get("status") == "ok"), None)
                invalid = [c["label"] for c in (ref, best) if c and contended(c)]
                if ref and invalid:  # a ratio from a contended case is no figure to headline
                    lines += [f"No headline ratio against {engine}: " + ", ".join(f"`{x}`" for x in invalid)
                              + " was measured under contention (INVALID).", ""]
                elif ref and best and _throughput(ref) and _throughput(best):
                    ratio = _throughput(best) / _throughput(ref)
                    lines += [f"Best stack `{best['label']}` vs {engine} on the same weights: "
                              f"**{ratio:.2f}×** {_per_s(best)}.", ""]
        stem = f"{i:02d}-{workload.replace('/', '-')}-bs{bs}" + (f"-n{seq_len}" if seq_len else "")
        for kind, fn in (("speedup", plot_speedups), ("latency", plot_latency)):
            png = fn(group, out_dir / f"{stem}-{kind}.png", title)
            if png:
                lines += [f"![{kind}]({png.name})", ""]
        details = [f"- **{c['label']}**\n{case_details(c)}" for c in group if case_details(c)]
        if details:
            lines += ["Details:", "", *details, ""]
    table2 = sdpa_speedup_rows(cases)
    if table2:
        lines += ["## End-to-end SDPA speedup (the study's Table II form)", "",
                  table(["workload", "model", "batch", "device", "sdpa / baseline", "study (Flash Attention)"],
                        table2), "", STUDY_SDPA_NOTE, ""]
    md = out_dir / "report.md"
    md.write_text("\n".join(lines))
    return md


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
            _fmt(la), _fmt(lb), f"{(lb - la) / la:+.1%}" if la and lb else "–",
            f"{_fmt(ta, '.1f')} {_per_s(ca)}", f"{_fmt(tb, '.1f')} {_per_s(cb)}",
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
