"""``genaccel run``, ``ablate`` and ``bench``: measure one stack, a cumulative ablation, or a bench
TOML's matrix; each writes report.json (after every case), report.md, report.html and plots, and
prints its cases as Markdown, CSV or JSON (``--format``).

The run layer (torch) is imported inside the commands: ``list`` and ``--help`` stay free of it.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..errors import GenaccelError
from ..files import OutputDir
from .args import environment, failed_cases, out_dir, print_cases, resolve_run, resolve_runs, say


def run_command(args, registry) -> int:
    out = out_dir(args, "run")
    run = resolve_run(args, registry, args.opt)  # every name, option and the device, before any work (and torch)
    # imported when the command runs: `list` and `--help` stay free of torch
    from ..plugin.specs import NotApplied
    from ..report.render import render
    from ..report.results import ReportDoc, note_inputs
    from ..report.store import write_json
    from ..run.case import run_case

    run = run.with_config(out_dir=str(out / "outputs"))
    OutputDir(out, overwrite=args.overwrite)  # checked, created and locked before any work
    env = environment(registry, run.config.device, args)
    try:
        case = run_case(run)
    except NotApplied as e:  # a decoder that cannot take this model (a reference engine)
        raise GenaccelError(f"decoder {run.config.decoder}: {e}") from None
    doc = ReportDoc(kind="run", environment=env, cases=[case]).to_dict()
    note_inputs(env, doc)
    write_json(out / "report.json", doc)
    render(doc, out)
    print_cases([doc], args.format)
    for s in case.skipped_optimizations:
        say(args, f"skipped {s['name']}: {s['reason']}")
    say(args, f"\nreport: {out / 'report.json'}, {out / 'report.md'}, {out / 'report.html'}")
    return 0


def ablate_command(args, registry) -> int:
    spec = registry.workload(args.workload)
    steps = []
    if not args.no_reference and spec.reference_decoder and not args.decoder:
        steps.append(((), spec.reference_decoder))
    steps += [(args.steps[:i], None) for i in range(len(args.steps) + 1)]
    runs = resolve_runs(args, registry, steps)  # fail fast on names and impossible stacks, before hours of measuring
    # imported when the command runs: `list` and `--help` stay free of torch
    from ..report.render import render
    from ..report.store import Report
    from ..report.tables import phase_table, speedup_table
    from ..run.bench import run_cases

    out = out_dir(args, "ablate")
    OutputDir(out, overwrite=args.overwrite)
    report = Report(out, "ablate", environment(registry, args.device, args),
                    {"steps": list(args.steps), **runs[-1].config.to_dict()})
    run_cases(runs, report)
    render(report.doc, out)
    print_cases(report.doc["cases"], args.format)
    if args.format == "md":
        print()
        print(speedup_table(report.doc["cases"]))
        phases = phase_table(report.doc["cases"])
        if phases:
            print("\ntime by phase:\n" + phases)
    say(args, f"\nreport: {out / 'report.json'}, {out / 'report.md'}, {out / 'report.html'}")
    return failed_cases(report.doc["cases"])


def bench_command(args, registry) -> int:
    # imported when the command runs: `list` and `--help` stay free of torch
    from ..report.llamacpp import comparison
    from ..report.render import render
    from ..report.store import Report
    from ..run.bench import add_skipped, bench_profiles, bench_runs, case_key, run_cases, spread_cases
    from ..run.bench_config import BenchConfig

    bench = BenchConfig.from_toml(args.config, registry)
    runs, skipped = bench_runs(bench, registry)
    out = Path(args.out) if args.out else Path("reports") / time.strftime("%Y%m%d-%H%M%S")
    outdir = OutputDir(out, resume=args.resume, overwrite=args.overwrite, resumable=True)
    kept = [c for c in (outdir.existing or {}).get("cases", [])
            if isinstance(c, dict) and c.get("status") == "ok" and isinstance(c.get("config"), dict)]
    device = runs[0].config.device if runs else "cpu"
    report = Report(out, "bench", environment(registry, device, args), {"path": str(bench.path)}, cases=kept)
    add_skipped(report, skipped)
    done = {case_key(c["config"]) for c in kept}
    if args.devices:
        spread_cases(runs, report, args.devices, done=done)
    else:
        run_cases(runs, report, done=done)
    bench_profiles(registry, bench, report)
    pairs = comparison(report.doc["cases"])
    if pairs:  # the llama.cpp section's figures, in report.json too
        report.doc["llama_cpp"] = pairs
        report.save()
    md = render(report.doc, out)
    print_cases([c for c in report.doc["cases"] if c["status"] != "skipped"], args.format)
    say(args, f"\nreport: {out / 'report.json'}, {md}, {out / 'report.html'}")
    return failed_cases(report.doc["cases"])
