"""``genaccel profile`` (operator time per phase, work per phase: the study's Fig. 4 form) and
``genaccel characterize`` (lengths and latency distribution: Table II and Fig. 3 forms), each over one
or more workloads with one set of run options."""

from __future__ import annotations

import sys

from ..files import OutputDir
from .args import environment, out_dir, resolve_run


def _runs(args, registry) -> list:
    """The command's workloads, each resolved with the same run options, before any work."""
    runs = []
    for workload in [args.workload, *args.workloads]:
        args.workload = workload
        runs.append(resolve_run(args, registry, args.opt))
    return runs


def profile_command(args, registry) -> int:
    runs = _runs(args, registry)  # every name first: torch only once they are right
    # imported when the command runs: `list` and `--help` stay free of torch
    from ..files import write_text
    from ..report.characterization import breakdown_markdown, plot_breakdown, work_markdown
    from ..report.html_pages import write_profile_html
    from ..report.results import SCHEMA_VERSION
    from ..report.store import write_json
    from ..run.profile import profile_workload

    out = out_dir(args, "profile")
    OutputDir(out, overwrite=args.overwrite, report="profile.json")  # checked, created and locked before any work
    env = environment(registry, runs[0].config.device, args)
    profiles = []
    doc = {"schema_version": SCHEMA_VERSION, "kind": "profile", "environment": env, "profiles": profiles}
    for i, run in enumerate(runs):
        config = run.config
        print(f"[{i + 1}/{len(runs)}] profiling {config.workload} {config.label}", file=sys.stderr, flush=True)
        trace = out / ("trace.json" if i == 0 else f"trace-{config.workload.replace('/', '-')}.json")
        profiles.append(profile_workload(registry, run, trace))
        write_json(out / "profile.json", doc)
    plot_breakdown(profiles, out / "breakdown.png")
    md = breakdown_markdown(profiles) + "\n\nWork per phase (FLOPs counted in eager mode)\n\n" + work_markdown(profiles)
    write_text(out / "profile.md", "# genaccel profile\n\n" + md + "\n\n![breakdown](breakdown.png)\n")
    write_profile_html(doc, out / "profile.html")
    print(md)
    for p in profiles:
        if p["method"] != "measured":
            print(f"{p['workload']} {p['label']}: {p['method']}")
    print(f"\nprofile: {out / 'profile.json'}, {out / 'profile.html'}, {out / 'breakdown.png'}, {out / 'trace.json'}")
    return 0


def characterize_command(args, registry) -> int:
    runs = _runs(args, registry)  # every name first: torch only once they are right
    # imported when the command runs: `list` and `--help` stay free of torch
    from ..files import write_text
    from ..report.characterization import characterize, characterize_markdown, plot_latency_distribution
    from ..report.html_pages import write_characterize_html
    from ..report.results import SCHEMA_VERSION, note_inputs
    from ..report.store import write_json
    from ..run.case import run_case

    out = out_dir(args, "characterize")
    OutputDir(out, overwrite=args.overwrite, report="characterize.json")  # checked, created and locked before any work
    env = environment(registry, runs[0].config.device, args)
    cases = [run_case(run) for run in runs]
    rows = [characterize(c) for c in cases]
    doc = {"schema_version": SCHEMA_VERSION, "kind": "characterize", "environment": env, "table": rows,
           "cases": [c.to_dict() for c in cases]}
    for c in doc["cases"]:
        note_inputs(env, c)
    write_json(out / "characterize.json", doc)
    plot_latency_distribution(cases, out / "latency.png")
    md = characterize_markdown(rows)
    write_text(out / "characterize.md", "# genaccel characterization\n\n" + md + "\n\n![latency](latency.png)\n")
    write_characterize_html(doc, out / "characterize.html")
    print(md)
    print(f"\ncharacterization: {out / 'characterize.json'}, {out / 'characterize.html'}, {out / 'latency.png'}")
    return 0
