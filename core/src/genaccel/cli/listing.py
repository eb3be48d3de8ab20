"""``genaccel list`` (what the installed plugins offer) and ``genaccel compare`` (deltas between
reports).  Neither imports torch."""

from __future__ import annotations

import json
from pathlib import Path

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
    from ..report.compare import compare
    from ..report.store import load

    a, b = load(args.a), load(args.b)
    if Path(args.a).resolve() == Path(args.b).resolve():
        warn(f"comparing {str(args.a)!r} with itself: every delta is zero; give two reports (before, after)")
    print(compare(a, b))
    return 0
