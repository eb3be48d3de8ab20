"""Reports as Markdown tables: a case's row and details, an ablation's speedups, time by phase,
sequence-length sweeps.  Readers take a report's JSON form (cases as dicts) of the current schema."""

from __future__ import annotations

from ..plugin.specs import GGUF_PRECISION, REFERENCE_DECODERS
from .results import SCHEMA_VERSION, plural, upgrade


def fmt(x, spec=".3f", none="–"):
    return none if x is None else format(x, spec)


def rate(x) -> str:
    """A throughput: one decimal from 10 up, else three significant digits (a slow workload's 0.0275
    images/s is not "0.0")."""
    return fmt(x, ".1f" if x is not None and abs(x) >= 10 else ".3g")


def mib(x):
    return "–" if not x else f"{x / 2**20:,.0f}"


def throughput_of(case: dict):
    return (case.get("summary") or {}).get("throughput_per_s")


def per_s(case_or_unit) -> str:
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
    return ("≥" if s.get(f"{key}_uncapped") else "") + pct(s[key]) + (f" ({source})" if source else "")


def throughput_spread(case: dict) -> dict:
    """The case's throughput over its repetitions (``--repeat``): n, values, mean, sd, ci95 ({} before them)."""
    return ((case.get("summary") or {}).get("repeats") or {}).get("throughput_per_s") or {}


def _throughput_cell(case: dict) -> str:
    """Throughput, ± its sd over repetitions when repeated, in the workload's unit."""
    tps = throughput_of(case)
    if tps is None:
        return "–"
    sd = throughput_spread(case).get("sd")
    return rate(tps) + (f" ± {rate(sd)}" if sd is not None else "") + " " + per_s(case)


def _interval_cell(case: dict) -> str:
    ci = throughput_spread(case).get("ci95")
    return f"{rate(ci[0])}–{rate(ci[1])} (n={throughput_spread(case)['n']})" if ci else "–"


def case_row(case: dict) -> list[str]:
    s = case.get("summary") or {}
    lat = s.get("latency_s") or {}
    if case.get("status") != "ok":
        return [case["label"], str(case.get("batch_size") or "–"), f"**{case['status']}**: {case.get('error') or ''}"] + [""] * 10
    return [
        _label(case),
        str(case["batch_size"]),
        fmt(lat.get("mean")),
        fmt(lat.get("p50")),
        fmt(lat.get("p90")),
        fmt((s.get("ttft_s") or {}).get("mean")),
        _throughput_cell(case),
        _interval_cell(case),
        fmt(s.get("output_tokens_per_s"), ".1f"),
        fmt(s.get("decode_tokens_per_s"), ".1f"),
        _mbu(s, "mbu"),
        _mbu(s, "mbu_p50"),
        mib(s.get("peak_memory_bytes")),
    ]


def pct(x):
    return "–" if x is None else f"{100 * x:.0f}%"


CASE_HEADER = ["stack", "batch", "latency mean (s)", "p50", "p90", "TTFT (s)", "throughput (± sd)",
               "95% interval", "tok/s", "decode tok/s", "MBU", "MBU p50 step", "peak MiB"]


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def environment_facts(env: dict) -> list[tuple[str, str]]:
    """A report's environment block as (name, value) rows: provenance first, then the machine and its probes."""
    git = env.get("git") or {}
    versions = ", ".join(f"{k} {v}" for k, v in (env.get("versions") or {}).items() if v)
    deps = ", ".join(f"{k} {v}" for k, v in (env.get("dependencies") or {}).items() if v)
    system = ", ".join(f"{k}: {v}" for k, v in (env.get("system") or {}).items())
    bw, gemm = env.get("memory_bandwidth_bytes_per_s"), env.get("gemm_peak_flops_per_s")
    rows = [
        ("time (UTC)", env.get("timestamp_utc")),
        ("command", env.get("command_line")),
        ("git commit", git.get("commit") and git["commit"] + (" (with uncommitted changes)" if git.get("dirty") else "")),
        ("device", env.get("device") and f"{env['device']} — {env.get('device_name')}"),
        ("CPU", env.get("cpu")),
        ("platform", env.get("platform")),
        ("versions", versions),
        ("dependencies", deps),
        ("system (torch.utils.collect_env)", system),
        ("memory bandwidth", bw and f"{bw / 1e9:.1f} GB/s, MBU's reference (the best measured on this machine)"
         + (f"; this run measured {env['memory_bandwidth_probe_bytes_per_s'] / 1e9:.1f}"
            if env.get("memory_bandwidth_probe_bytes_per_s") else "")
         + "; each case's MBU is over the highest of it and the case's own probes (before and after), at most 100%"),
        ("GEMM peak (float32)", gemm and f"{gemm / 1e9:.0f} GFLOP/s"),
        *((f"inputs of {w}", src) for w, src in (env.get("inputs") or {}).items()),
    ]
    return [(k, str(v)) for k, v in rows if v]


def environment_md(env: dict) -> str:
    """The environment block as a Markdown list."""
    return "".join(f"- {k}: {v}\n" for k, v in environment_facts(env))


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
        compared = (f"token agreement {acc['token_agreement']:.1%}, exact {acc['exact_match_rate']:.0%}, "
                    if acc["exact_match_rate"] is not None else f"token comparison {acc['token_comparison']}; ")
        parts.append(
            f"accuracy impact (vs {acc.get('reference') or 'greedy decoding of the unoptimized model'}): {compared}"
            f"teacher-forced top-1 {acc['teacher_forced_top1_agreement']:.1%}, "
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
        probes = "/".join(fmt(p and p / 1e9, ".1f") for p in (bw.get("probe_before_bytes_per_s"),
                                                                bw.get("probe_after_bytes_per_s")))
        capped = "; capped at 100% (uncapped " + pct(s["mbu_uncapped"]) + ")" if s.get("mbu_uncapped") else ""
        parts.append(f"MBU over {bw['bytes_per_s'] / 1e9:.1f} GB/s, the {bw['source']} (reference "
                     f"{fmt(bw.get('reference_bytes_per_s') and bw['reference_bytes_per_s'] / 1e9, '.1f')}, "
                     f"probes before/after {probes} GB/s){capped}")
    if s.get("compile_s"):
        cache = (s.get("compile_cache") or {}).get("build")
        parts.append(f"compile (first warm-up minus last): {s['compile_s']:.1f} s"
                     + (f", a {cache} build (compile cache)" if cache else ""))
    return "\n".join(f"  - {p}" for p in parts)


def speedups(cases: list[dict]) -> list[tuple[dict, float, float, float | None]]:
    """(case, throughput, × baseline, × previous step) of each stack that measured a throughput, in
    order; the baseline is the first of them (references are left out)."""
    out, base, prev = [], None, None
    for case in cases:
        tps = throughput_of(case)
        if case.get("decoder") in REFERENCE_DECODERS or not tps:
            continue
        base = base or tps
        out.append((case, tps, tps / base, tps / prev if prev else None))
        prev = tps
    return out


def speedup_rows(cases: list[dict]) -> list[list[str]]:
    """Rows of an ablation: each stack's throughput (the workload's units per second) against the
    baseline and the previous step."""
    rows = []
    for case, tps, x_base, x_prev in speedups(cases):
        mark = " INVALID: contended" if contended(case) else ""
        rows.append([case["label"], rate(tps), f"{x_base:.2f}×{mark}", f"{x_prev:.2f}×{mark}" if x_prev else "–"])
    return rows


def case_phases(case: dict) -> dict:
    """A case's seconds per phase, when it has more than a text decoder's prefill and decode."""
    phases = (case.get("summary") or {}).get("phase_s") or {}
    return phases if len(phases) >= 2 and set(phases) != {"prefill", "decode"} else {}


def phase_rows(cases: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Seconds per phase (a cascade's stages, text encoder, decoders ...) over each case's timed batches, and
    each phase's share of their sum, one row per case: (header, rows); no rows when no case has phases of its own."""
    shown = [c for c in cases if c.get("status") == "ok" and case_phases(c)]
    names = list(dict.fromkeys(name for c in shown for name in case_phases(c)))
    rows = []
    for c in shown:
        phases = case_phases(c)
        total = sum(phases.values()) or 1.0
        rows.append([c["label"], *(f"{phases[n]:.3f} ({phases[n] / total:.0%})" if n in phases else "–" for n in names)])
    return ["stack", *(f"{n} s (share)" for n in names)], rows


def phase_table(cases: list[dict]) -> str:
    """:func:`phase_rows` as a Markdown table; empty when no case has phases of its own."""
    header, rows = phase_rows(cases)
    return table(header, rows) if rows else ""


REFERENCE_ENGINES = (("hf-generate", "transformers' generate"), ("diffusers-pipeline", "diffusers' pipeline"),
                     ("llama-cpp", "llama.cpp"))
WEIGHT_ONLY = ("int8-weight-only", "int4-weight-only")


def gguf_type(case: dict) -> str:
    """The GGUF type a llama-cpp case ran (f32 unless its options say otherwise)."""
    return ((case.get("config") or {}).get("options") or {}).get("gguf_type", "f32")


def precision(case: dict) -> str | None:
    """A case's precision: llama.cpp's the one its GGUF type stands for, genaccel's its weight-only
    quantization, else its dtype."""
    if case.get("decoder") == "llama-cpp":
        return GGUF_PRECISION.get(gguf_type(case))
    return next((q for q in WEIGHT_ONLY if q in case.get("optimizations", [])), case.get("dtype"))


def headlines(group: list[dict]) -> list[dict]:
    """The best stack of a group against each reference engine in it (against llama.cpp, the best at
    its precision): ``engine``, ``best`` (label), ``ratio`` of throughputs and ``per_s``; or, when
    either was contended, ``invalid`` (their labels) and no ratio (a figure from a contended case is
    no headline)."""
    out = []
    stacks = [c for c in group if c.get("status") == "ok" and c.get("decoder") not in REFERENCE_DECODERS]
    for ref_decoder, engine in REFERENCE_ENGINES:
        ref = next((c for c in group if c.get("decoder") == ref_decoder and c.get("status") == "ok"), None)
        if ref is None:
            continue
        peers = [c for c in stacks if ref_decoder != "llama-cpp" or precision(c) == precision(ref)]
        best = max(peers, key=lambda c: throughput_of(c) or 0, default=None)
        invalid = [c["label"] for c in (ref, best) if c and contended(c)]
        if invalid:
            out.append({"engine": engine, "invalid": invalid})
        elif best and throughput_of(ref) and throughput_of(best):
            out.append({"engine": engine, "invalid": [], "best": best["label"], "reference": ref["label"],
                        "ratio": throughput_of(best) / throughput_of(ref), "per_s": per_s(best)})
    return out


def speedup_table(cases: list[dict]) -> str:
    """An ablation's speedup table, in the unit of its (first measured) workload."""
    cases = upgrade({"schema_version": SCHEMA_VERSION, "kind": "ablate", "cases": cases})["cases"]
    unit = next((c for c in cases if throughput_of(c)), {"unit": "token"})
    return table(["stack", per_s(unit), "× baseline", "× previous step"], speedup_rows(cases))


def sweep_rows(cases: list[dict]) -> list[list[str]]:
    """Per sequence length: each stack's latency and memory, and its speedup over the first stack."""
    rows, base = [], {}
    for c in sorted((c for c in cases if c.get("status") == "ok" and c.get("seq_len")), key=lambda c: c["seq_len"]):
        s = c["summary"]
        lat, mem = s["latency_s"]["mean"], s.get("peak_memory_increase_bytes") or 0
        b = base.setdefault(c["seq_len"], (lat, mem))
        measurable = min(mem, b[1]) >= 2**20  # a ratio of sub-MiB growths is noise
        rows.append([str(c["seq_len"]), c["label"], fmt(lat), f"{b[0] / lat:.2f}×", mib(mem),
                     f"{b[1] / mem:.1f}×" if measurable else "–"])
    return rows


def group_cases(cases) -> dict[tuple, list[dict]]:
    """Cases by workload, model, batch size, device, dtype and sequence length (a table each)."""
    groups: dict[tuple, list[dict]] = {}
    for c in cases:
        key = (c["workload"], c.get("preset") or c.get("checkpoint"), c["batch_size"], c["device"], c["dtype"],
               c.get("seq_len"))
        groups.setdefault(key, []).append(c)
    return groups


