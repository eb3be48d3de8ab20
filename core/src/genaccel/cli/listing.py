"""``genaccel list`` (what the installed plugins offer) and ``genaccel compare`` (deltas between
reports).  Neither imports torch."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..errors import GenaccelError
from ..files import warn
from ..plugin.specs import DTYPES, STAGES
from ..report.tables import table


def _options(spec) -> dict:
    return {o.flag: o.help for o in spec.options}


def _roles(roles) -> list[str]:
    return [r.__name__ for r in roles]


def listing(registry) -> dict:
    """Everything ``list --json`` prints."""
    return {
        "workloads": [
            {"name": w.name, "plugin": w.plugin, "presets": list(w.presets), "default_preset": w.default_preset,
             "default_decoder": w.default_decoder, "roles": _roles(w.roles), "unit": w.unit,
             "capabilities": list(w.capabilities), "description": w.description, "options": _options(w)}
            for w in registry.workloads.values()
        ],
        "decoders": [
            {"name": d.name, "plugin": d.plugin, "requires": _roles(d.requires), "description": d.description,
             "options": _options(d)}
            for d in registry.decoders.values()
        ],
        "optimizations": [
            {"name": o.name, "plugin": o.plugin, "stage": o.stage, "devices": sorted(o.devices), "lossless": o.lossless,
             "requires": _roles(o.requires), "needs": sorted(o.needs), "description": o.description,
             "options": _options(o)}
            for o in registry.optimizations.values()
        ],
        "options": {o.flag: {**o.describe(), "declared_by": owners} for o, owners in registry.all_options().values()},
        "commands": [{"name": c.name, "plugin": c.plugin, "help": c.help} for c in registry.commands.values()],
        "dtypes": [{"name": d, "lossless": d == "float32"} for d in DTYPES],
    }


def options_table(options: dict) -> str:
    """Options (name → (Option, owners)) as a table: flag, type or choices, default, who declares it, help."""
    rows = []
    for option, owners in options.values():
        d = option.describe()
        rows.append([option.flag, d["type"] + (f": {', '.join(d['choices'])}" if "choices" in d else ""),
                     d["default"] or "-", ", ".join(owners), d["help"]])
    return table(["option", "type", "default", "of", "help"], rows)


def _workload_options(args, registry) -> int:
    """``list --options WORKLOAD``: the options that workload's runs take (with --json, as JSON)."""
    options = registry.workload_options(registry.workload(args.options_of))
    if args.json:
        print(json.dumps({o.flag: {**o.describe(), "declared_by": owners} for o, owners in options.values()}, indent=1))
    elif options:
        print(f"Options a run of {args.options_of} takes (after the workload name; each where the run has its owner)")
        print(options_table(options))
    else:
        print(f"{args.options_of} takes no options of its own, and none of its decoders and optimizations declares one")
    return 0


def list_command(args, registry) -> int:
    if args.options_of:
        return _workload_options(args, registry)
    data = listing(registry)
    if args.json:
        print(json.dumps(data, indent=1))
        return 0
    print("Workloads")
    print(table(["name", "presets", "default decoder", "capabilities", "plugin"], [
        [w["name"], ", ".join(w["presets"]), w["default_decoder"], ", ".join(w["capabilities"]), w["plugin"]]
        for w in data["workloads"]]) if data["workloads"] else "  (none: install a model plugin, e.g. genaccel-llama)")
    print("\nDecoders")
    print(table(["name", "needs roles", "plugin", "description"],
                [[d["name"], ", ".join(d["requires"]), d["plugin"], d["description"]] for d in data["decoders"]]))
    print(f"\nOptimizations (applied in stage order: {' → '.join(STAGES)})")
    print(table(["name", "stage", "devices", "lossless", "needs", "plugin"], [
        [o["name"], o["stage"], ", ".join(o["devices"]), "yes" if o["lossless"] else "no (lossy)",
         ", ".join(o["requires"] + o["needs"]), o["plugin"]] for o in data["optimizations"]]))
    print("\nDtypes (--dtype)")
    print(table(["dtype", "lossless"], [[d["name"], "yes (the reference)" if d["lossless"] else
                                         "no (lossy relative to float32: runs report the accuracy impact)"]
                                        for d in data["dtypes"]]))
    print("\nOptions (after the workload name; taken where the run has one of their owners)")
    print(options_table(registry.all_options()))
    return 0


def compare_command(args, registry) -> int:
    """Print the series' deltas; warn of each environment difference; with ``--fail-above``, exit 1 when a
    case regressed beyond the threshold and its noise."""
    # imported when the command runs: `list` and `--help` stay free of torch
    from ..report.compare import compare_series, regressions, render_comparison
    from ..report.store import load

    paths = list(args.reports)
    if len(paths) < 2:
        raise GenaccelError(f"compare needs two or more reports (oldest first); got {len(paths)}: give e.g. "
                            "base/report.json head/report.json")
    docs = [load(p) for p in paths]
    if len({Path(p).resolve() for p in paths}) < len(paths):
        warn("a report is given twice: its deltas to itself are zero; give different reports (before, after)")
    result = compare_series(docs, [str(p) for p in paths])
    for line in result["environment_differences"]:
        warn(f"the environments differ, so do the figures: {line}")
    print(render_comparison(result, args.format, args.fail_above))
    if args.fail_above is None:
        return 0
    bad = regressions(result, args.fail_above)
    if bad:
        print(f"genaccel: {len(bad)} case(s) regressed more than {args.fail_above:g}% and beyond their noise: "
              + "; ".join(f"{r['case']} {r['change']:+.1%}" for r in bad), file=sys.stderr)
        return 1
    return 0
