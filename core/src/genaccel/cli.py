"""The ``genaccel`` command line."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import attrs

from .config import DTYPES
from .errors import GenaccelError, first_line, out_of_memory, unknown_name
from .files import OPEN, OutputDir, close_all
from .registry import STAGES, check_device_name

EXIT_CODES = """exit codes:
  0    done
  2    wrong input (one line "genaccel: error: ..." says what); nothing was measured
  3    some cases failed (kept in the report), or out of memory
  130  interrupted; finished cases are in the report (bench --resume continues it)"""


def _csv(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def _tp(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in _csv(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--tp {text!r}: expected a number of ranks, e.g. 2 (ablate: 1,2,4)") from None


def out_path(text: str) -> Path:
    """--out: a directory path; an empty one would silently mean the current directory."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty; give a directory path")
    return Path(text)


def device_arg(text: str) -> str:
    try:
        return check_device_name(text)
    except GenaccelError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _add_run_options(p: argparse.ArgumentParser, *, steps: bool = False) -> None:
    p.add_argument("workload", help="family/task, e.g. llama/t-t (see `genaccel list`)")
    model = p.add_mutually_exclusive_group()
    model.add_argument("--preset", help="random-weight model size (default: the workload's)")
    model.add_argument("--checkpoint", help="local Hugging Face checkpoint directory")
    p.add_argument("--data", help="directory of the user's own inputs")
    p.add_argument("--decoder", help="decoding strategy (default: the workload's)")
    if steps:
        p.add_argument("--steps", type=_csv, required=True, help="optimizations added one at a time: A,B,C")
        p.add_argument("--no-reference", action="store_true", help="skip the reference (transformers' generate, diffusers' pipeline)")
    else:
        p.add_argument("--opt", type=_csv, default=(), help="optimization stack, any order: A,B,...")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--samples", type=int, default=4, help="samples to time (rounded up to whole batches)")
    p.add_argument("--max-new-tokens", type=int, help="new tokens per sample (default: the paper's distribution)")
    p.add_argument("--seq-len", type=int, help="fix every sample's input length (default: the paper's distribution)")
    p.add_argument("--device", type=device_arg, default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--dtype", choices=DTYPES, default="float32",
                   help="weights and activations; bfloat16 and float16 are lossy relative to float32")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--warmup", type=int, default=None, help="warm-up generations (default 1, 2 with compile)")
    p.add_argument("--cache-len", type=int, help="KV cache positions (default: fit the samples)")
    p.add_argument("--out", type=out_path, help="output directory")
    p.add_argument("--overwrite", action="store_true", help="replace a report already in --out")
    p.add_argument("--tp", type=_tp, default=(1,), help="tensor-parallel ranks (ablate: a list, e.g. 1,2,4, "
                   "for a scaling table)")
    p.set_defaults(takes_options=True)
    p.epilog = ("The workload, the decoder and each optimization of the run take their own options, e.g. "
                "--top-p 0.95, --exit-layer 4, --image-tokenizer PATH (`genaccel list` shows them).")


def _configs(args, registry, runs) -> list:
    """One RunConfig per (optimizations, decoder) of ``runs``, each with the options it takes of
    those given on the command line; an option no run takes is an error."""
    from .config import RunConfig

    spec = registry.workload(args.workload)
    given = dict(getattr(args, "options", {}))
    used, configs = set(), []
    for optimizations, decoder in runs:
        decoder = decoder or args.decoder
        warmup = args.warmup
        if warmup is None:
            warmup = 2 if {"compile", "cuda-graph"} & set(optimizations) else 1
        takes = registry.run_options(spec, decoder, optimizations)
        options = registry.check_run_options({k: v for k, v in given.items() if k in takes}, spec, decoder,
                                             optimizations)
        used |= options.keys()
        try:
            configs.append(RunConfig(
                workload=args.workload, preset=args.preset, checkpoint=args.checkpoint, data=args.data,
                decoder=decoder, optimizations=optimizations, batch_size=args.batch_size, samples=args.samples,
                max_new_tokens=args.max_new_tokens, seq_len=args.seq_len, device=args.device, dtype=args.dtype,
                seed=args.seed, warmup=warmup, cache_len=args.cache_len, options=options, tp=max(getattr(args, "tp", (1,))),
            ))
        except (ValueError, TypeError) as e:
            raise GenaccelError(f"bad option: {e}") from None
    unused = {k: v for k, v in given.items() if k not in used}
    if unused:
        optimizations, decoder = runs[-1]
        registry.check_run_options(unused, spec, decoder or args.decoder, optimizations)  # raises
    return configs


def _config(args, registry, optimizations=(), decoder=None):
    return _configs(args, registry, [(tuple(optimizations), decoder)])[0]


def _out_dir(args, kind: str) -> Path:
    if args.out:
        return Path(args.out)
    return Path("runs") / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"


def _environment(device: str) -> dict:
    from .measure import environment, measure_bandwidth
    from .runner import check_device

    check_device(device)
    return environment(device, measure_bandwidth(device))


def _print_cases(cases):
    from .report import CASE_HEADER, case_row, table

    header, rows = CASE_HEADER, [case_row(c) for c in cases]
    if len({c.get("workload") for c in cases}) > 1:  # a bench: name each row's workload
        header, rows = ["workload", *header], [[str(c.get("workload")), *r] for c, r in zip(cases, rows)]
    print(table(header, rows))


# --- commands ---------------------------------------------------------------------------------


def _options(spec) -> dict:
    return {o.flag: o.help for o in spec.options}


def cmd_list(args, registry) -> int:
    data = {
        "workloads": [
            {"name": w.name, "plugin": w.plugin, "presets": list(w.presets), "default_preset": w.default_preset,
             "default_decoder": w.default_decoder, "roles": [r.__name__ for r in w.roles], "unit": w.unit,
             "capabilities": sorted(w.capabilities), "description": w.description, "options": _options(w)}
            for w in registry.workloads.values()
        ],
        "decoders": [
            {"name": d.name, "plugin": d.plugin, "requires": sorted(d.requires), "description": d.description,
             "options": _options(d)}
            for d in registry.decoders.values()
        ],
        "optimizations": [
            {"name": o.name, "plugin": o.plugin, "stage": o.stage, "devices": sorted(o.devices), "lossless": o.lossless,
             "requires": sorted(o.requires), "needs": sorted(o.needs), "description": o.description,
             "options": _options(o)}
            for o in registry.optimizations.values()
        ],
        "options": {o.flag: {**o.describe(), "declared_by": owners} for o, owners in registry.all_options().values()},
        "commands": [{"name": c.name, "plugin": c.plugin, "help": c.help} for c in registry.commands.values()],
        "dtypes": [{"name": d, "lossless": d == "float32"} for d in DTYPES],
    }
    if args.json:
        print(json.dumps(data, indent=1))
        return 0
    from .report import table

    print("Workloads")
    print(table(["name", "presets", "default decoder", "capabilities", "plugin"], [
        [w["name"], ", ".join(w["presets"]), w["default_decoder"], ", ".join(w["capabilities"]), w["plugin"]]
        for w in data["workloads"]]) if data["workloads"] else "  (none: install a model plugin, e.g. genaccel-llama)")
    print("\nDecoders")
    print(table(["name", "needs", "plugin", "description"],
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
    print(table(["option", "type", "default", "of", "help"], [
        [flag, o["type"] + (f": {', '.join(o['choices'])}" if "choices" in o else ""), o["default"] or "-",
         ", ".join(o["declared_by"]), o["help"]] for flag, o in data["options"].items()]))
    return 0


def cmd_run(args, registry) -> int:
    out = _out_dir(args, "run")
    config = attrs.evolve(_config(args, registry, args.opt), out_dir=str(out / "outputs"))
    from .report import render, write_json
    from .results import ReportDoc
    from .runner import run_case

    spec = registry.workload(config.workload)  # names first: a misspelt one costs nothing
    registry.resolve_stack(spec, config.optimizations, config.device)
    registry.check_decoder(spec, config.decoder or spec.default_decoder)
    OutputDir(out, overwrite=args.overwrite)  # checked, created and locked before any work
    env = _environment(config.device)
    case = run_case(registry, config)
    doc = ReportDoc(kind="run", environment=env, cases=[case]).to_dict()
    write_json(out / "report.json", doc)
    render(doc, out)
    _print_cases([doc])
    for s in case.skipped_optimizations:
        print(f"skipped {s['name']}: {s['reason']}")
    print(f"\nreport: {out / 'report.json'}, {out / 'report.md'}")
    return 0


def _case_key(config: dict) -> str:
    """What identifies a case across runs of the same bench: its whole configuration but the output
    folder, with the kind of device only (a worker of ``--devices`` or a tensor-parallel rank runs
    on ``cuda:1`` a case asked for on ``cuda``)."""
    key = {k: v for k, v in config.items() if k != "out_dir"}
    key["device"] = str(key.get("device", "")).partition(":")[0]
    return json.dumps(key, sort_keys=True, default=str)


def _run_cases(registry, configs, report, *, strict: bool, done=frozenset()):
    from .runner import run_case_safe

    for i, config in enumerate(configs, start=1):
        slug = re.sub(r"[^a-z0-9.+-]+", "-", f"{config.workload}-bs{config.batch_size}-{config.label}".lower())
        config = attrs.evolve(config, out_dir=str(report.dir / "outputs" / f"{i:02d}-{slug}"))
        if _case_key(config.to_dict()) in done:
            print(f"[{i}/{len(configs)}] {config.workload} bs{config.batch_size} {config.label}: finished before, kept",
                  file=sys.stderr, flush=True)
            continue
        print(f"[{i}/{len(configs)}] {config.workload} {config.preset or config.checkpoint or ''} "
              f"bs{config.batch_size} {config.label}", file=sys.stderr, flush=True)
        from .distributed import is_rank

        if config.tp > 1 and not is_rank():  # a bench's tensor-parallel case: its ranks in worker processes
            from .spread import rank_devices, run_spread

            run_spread(registry, [config], report, rank_devices(config.device, config.tp))
            continue
        case = run_case_safe(registry, config, strict=strict)
        report.add(case)


def cmd_ablate(args, registry) -> int:
    from .report import Report, phase_table, render, speedup_table

    spec = registry.workload(args.workload)
    runs = []
    if not args.no_reference and spec.reference_decoder and not args.decoder:
        runs.append(((), spec.reference_decoder))
    runs += [(args.steps[:i], None) for i in range(len(args.steps) + 1)]
    configs = _configs(args, registry, runs)
    for c in configs:  # fail fast on names and impossible stacks, before hours of measuring
        registry.resolve_stack(spec, c.optimizations, c.device)
        registry.check_decoder(spec, c.decoder or spec.default_decoder)

    out = _out_dir(args, "ablate")
    OutputDir(out, overwrite=args.overwrite)
    report = Report(out, "ablate", _environment(args.device), {"steps": list(args.steps), **configs[-1].to_dict()})
    _run_cases(registry, configs, report, strict=True)
    render(report.doc, out)
    _print_cases(report.doc["cases"])
    print()
    print(speedup_table(report.doc["cases"]))
    phases = phase_table(report.doc["cases"])
    if phases:
        print("\ntime by phase:\n" + phases)
    print(f"\nreport: {out / 'report.json'}, {out / 'report.md'}")
    return _failed_cases(report.doc["cases"])


def _failed_cases(cases) -> int:
    """0 when every case asked for ran, else 3 with a line naming the failed ones."""
    failed = [c for c in cases if c.get("status") not in ("ok", "skipped")]
    if failed:
        print(f"genaccel: {len(failed)} of {len(cases)} cases failed: "
              + "; ".join(f"{c.get('workload')} {c.get('label')}: {c.get('status')}" for c in failed), file=sys.stderr)
        return 3
    return 0


def cmd_bench(args, registry) -> int:
    from .config import BenchConfig

    bench = BenchConfig.from_toml(args.config, registry)
    from .report import Report, render
    from .results import CaseResult

    families = {w.split("/")[0] for w in registry.workloads}
    configs, skipped = [], []
    for case in bench.cases:
        if case.workload.split("/")[0] not in families:
            skipped.append((case, f"no installed plugin provides {case.workload.split('/')[0]}/*"))
            continue
        registry.workload(case.workload)  # a misspelt task of an installed family is an error
        if case.missing_checkpoint():
            skipped.append((case, case.missing_checkpoint()))
            continue
        configs += case.configs()
    for c in configs:  # every name checked before the first case runs, not when its case is reached
        try:
            spec = registry.workload(c.workload)
            if c.preset and c.preset not in spec.presets:
                raise unknown_name(f"preset of {spec.name}", c.preset, spec.presets)
            registry.resolve_stack(spec, c.optimizations, c.device, strict=False)  # a lacking capability: a recorded skip
            registry.check_decoder(spec, c.decoder or spec.default_decoder)
        except GenaccelError as e:
            raise GenaccelError(f"{bench.path}: case {c.workload} {c.label}: {e}") from None
    out = Path(args.out) if args.out else Path("reports") / time.strftime("%Y%m%d-%H%M%S")
    outdir = OutputDir(out, resume=args.resume, overwrite=args.overwrite, resumable=True)
    kept = [c for c in (outdir.existing or {}).get("cases", [])
            if isinstance(c, dict) and c.get("status") == "ok" and isinstance(c.get("config"), dict)]
    device = configs[0].device if configs else "cpu"
    report = Report(out, "bench", _environment(device), {"path": str(bench.path)}, cases=kept)
    for case, reason in skipped:
        report.add(CaseResult(label="-", status="skipped", error=reason, workload=case.workload))
        print(f"skipped {case.workload}: {reason}", file=sys.stderr)
    done = {_case_key(c["config"]) for c in kept}
    if args.devices:  # independent cases in parallel, one worker process per device
        from .spread import run_spread

        configs = [attrs.evolve(c, out_dir=str(out / "outputs" / f"{i:02d}")) for i, c in enumerate(configs, 1)]
        run_spread(registry, configs, report, args.devices, done=done, key=_case_key)
    else:
        _run_cases(registry, configs, report, strict=False, done=done)
    md = render(report.doc, out)
    profile_md = _bench_profiles(registry, [c for case in bench.cases if case.workload in registry.workloads
                                            for c in case.profile_configs()], report, out)
    if profile_md:
        md.write_text(md.read_text() + "\n## Where the time goes\n\n" + profile_md + "\n\n![breakdown](breakdown.png)\n")
    _print_cases([c for c in report.doc["cases"] if c["status"] != "skipped"])
    print(f"\nreport: {out / 'report.json'}, {md}")
    return _failed_cases(report.doc["cases"])


def _bench_profiles(registry, configs, report, out) -> str:
    """Profile the bench's chosen cases; a failure is recorded and the bench keeps what it has."""
    from .characterize import breakdown_markdown, plot_breakdown, profile_workload

    profiles = []
    for config in configs:
        print(f"profiling {config.workload} {config.label}", file=sys.stderr, flush=True)
        try:
            profiles.append(profile_workload(registry, config, strict=False))
        except Exception as e:  # noqa: BLE001 - keep the measured cases whatever happens here
            print(f"  profile failed: {type(e).__name__}: {e}", file=sys.stderr)
    if not profiles:
        return ""
    report.doc["profiles"] = profiles
    report.save()
    plot_breakdown(profiles, out / "breakdown.png")
    return breakdown_markdown(profiles)


def cmd_compare(args, registry) -> int:
    from .report import compare, load

    a, b = load(args.a), load(args.b)
    if Path(args.a).resolve() == Path(args.b).resolve():
        from .files import warn

        warn(f"comparing {str(args.a)!r} with itself: every delta is zero; give two reports (before, after)")
    print(compare(a, b))
    return 0


def cmd_generate(args, registry) -> int:
    out = _out_dir(args, "generate")
    config = attrs.evolve(_config(args, registry, args.opt), out_dir=str(out))
    if not args.prompt.strip():
        raise GenaccelError("--prompt is empty; give the text to continue")
    check_names(registry, [config])
    from .roles import PromptInput, TokenModel

    spec = registry.workload(config.workload)
    if not {PromptInput, TokenModel} & set(spec.roles):
        raise GenaccelError(f"generate continues a prompt, and {spec.name} takes none; measure it with "
                            f"`genaccel run {spec.name}`")
    OutputDir(out, overwrite=True)  # files it writes (images, audio) replace their namesakes; removed again if left empty
    from .runner import _fit_cache, prepare
    from .workload import TextSample

    ctx = prepare(registry, config)
    inst = ctx.instance
    if ctx.has(PromptInput):  # input is more than text (an image, ...)
        sample = inst.prompt_sample(args.prompt, args.max_new_tokens, ctx.config.options)
    else:
        sample = TextSample(id="prompt", input_ids=inst.encode(args.prompt), max_new_tokens=args.max_new_tokens or 64)
    ctx.max_seq_len = _fit_cache(config, [[sample]]) if ctx.has(TokenModel) else 0
    result = ctx.decoder.run(ctx, [sample])
    files = result.records[0].get("files")
    if files:  # the output is an image or audio, written to files
        print("\n".join(f"wrote {f}" for f in files))
    else:
        print(args.prompt + inst.decode(result.outputs[0]))
    return 0


def _multi_configs(args, registry):
    """profile and characterize take several workloads with one set of run options."""
    configs = []
    for workload in [args.workload, *args.workloads]:
        args.workload = workload
        configs.append(_config(args, registry, args.opt))
    check_names(registry, configs)
    return configs


def check_names(registry, configs) -> None:
    """Every workload, optimization and decoder name of ``configs`` checked before any work."""
    for c in configs:
        spec = registry.workload(c.workload)
        registry.resolve_stack(spec, c.optimizations, c.device)
        registry.check_decoder(spec, c.decoder or spec.default_decoder)


def cmd_profile(args, registry) -> int:
    configs = _multi_configs(args, registry)
    from .characterize import breakdown_markdown, plot_breakdown, profile_workload, work_markdown
    from .report import SCHEMA_VERSION, write_json

    out = _out_dir(args, "profile")
    OutputDir(out, overwrite=args.overwrite, report="profile.json")  # checked, created and locked before any work
    env = _environment(configs[0].device)
    profiles = []
    for i, config in enumerate(configs):
        print(f"[{i + 1}/{len(configs)}] profiling {config.workload} {config.label}", file=sys.stderr, flush=True)
        trace = out / ("trace.json" if i == 0 else f"trace-{config.workload.replace('/', '-')}.json")
        profiles.append(profile_workload(registry, config, trace))
        write_json(out / "profile.json", {"schema_version": SCHEMA_VERSION, "kind": "profile", "environment": env,
                                          "profiles": profiles})
    plot_breakdown(profiles, out / "breakdown.png")
    md = breakdown_markdown(profiles) + "\n\nWork per phase (FLOPs counted in eager mode)\n\n" + work_markdown(profiles)
    (out / "profile.md").write_text("# genaccel profile\n\n" + md + "\n\n![breakdown](breakdown.png)\n")
    print(md)
    for p in profiles:
        if p["method"] != "measured":
            print(f"{p['workload']} {p['label']}: {p['method']}")
    print(f"\nprofile: {out / 'profile.json'}, {out / 'breakdown.png'}, {out / 'trace.json'}")
    return 0


def cmd_characterize(args, registry) -> int:
    configs = _multi_configs(args, registry)
    from .characterize import characterize, characterize_markdown, plot_latency_distribution
    from .report import SCHEMA_VERSION, write_json
    from .runner import run_case

    out = _out_dir(args, "characterize")
    OutputDir(out, overwrite=args.overwrite, report="characterize.json")  # checked, created and locked before any work
    env = _environment(configs[0].device)
    cases = [run_case(registry, c) for c in configs]
    rows = [characterize(c) for c in cases]
    write_json(out / "characterize.json", {"schema_version": SCHEMA_VERSION, "kind": "characterize",
                                           "environment": env, "table": rows, "cases": cases})
    plot_latency_distribution(cases, out / "latency.png")
    md = characterize_markdown(rows)
    (out / "characterize.md").write_text("# genaccel characterization\n\n" + md + "\n\n![latency](latency.png)\n")
    print(md)
    print(f"\ncharacterization: {out / 'characterize.json'}, {out / 'latency.png'}")
    return 0


def build_parser(registry=None) -> argparse.ArgumentParser:
    """The parser of the built-in commands and of those the plugins register (given ``registry``)."""
    parser = argparse.ArgumentParser(prog="genaccel", description="Characterize and accelerate generative inference.",
                                     epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="installed workloads, decoders, optimizations and their options")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_list)
    p = sub.add_parser("run", help="measure one workload with one optimization stack")
    _add_run_options(p)
    p.set_defaults(fn=cmd_run)
    p = sub.add_parser("ablate", help="baseline, then each cumulative stack, with speedups")
    _add_run_options(p, steps=True)
    p.set_defaults(fn=cmd_ablate)
    p = sub.add_parser("bench", help="the matrix of a bench TOML over every installed plugin")
    p.add_argument("config", nargs="?", default="bench.toml")
    p.add_argument("--out", type=out_path)
    p.add_argument("--resume", action="store_true", help="continue the report in --out, skipping its finished cases")
    p.add_argument("--devices", type=lambda t: tuple(device_arg(x) for x in _csv(t)), default=(),
                   help="run independent cases in parallel, one process per device: cuda:0,cuda:1 (or cpu,cpu)")
    p.add_argument("--overwrite", action="store_true", help="replace a report already in --out")
    p.set_defaults(fn=cmd_bench)
    p = sub.add_parser("compare", help="per-case deltas between two report.json files")
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    p.set_defaults(fn=cmd_compare)
    for name, fn, what in (("profile", cmd_profile, "operator time breakdown per phase (Fig. 4 form)"),
                           ("characterize", cmd_characterize, "sequence lengths and latency distribution (Table II, Fig. 3)")):
        p = sub.add_parser(name, help=what)
        _add_run_options(p)
        p.add_argument("workloads", nargs="*", default=[], help="more workloads with the same options")
        p.set_defaults(fn=fn)
    p = sub.add_parser("generate", help="generate text from a prompt")
    _add_run_options(p)
    p.add_argument("--prompt", required=True)
    p.set_defaults(fn=cmd_generate)
    for command in (registry.commands.values() if registry is not None else ()):
        if command.name in sub.choices:
            raise GenaccelError(f"plugin {command.plugin!r} registers command {command.name!r}, which genaccel has")
        p = sub.add_parser(command.name, help=command.help)
        command.add_arguments(p)
        p.set_defaults(fn=command.run)
    return parser


def _extra_options(parser: argparse.ArgumentParser, args, extra: list[str], bools=frozenset()) -> None:
    """Flags argparse does not know (``--image-tokenizer PATH``, ``--top-p 0.95``) become ``args.options``
    (name → text), checked against what the run's workload, decoder and optimizations declare.  A bool
    option (``bools``: names) may stand alone: ``--allow-missing-weights`` is ``--allow-missing-weights true``."""
    options, i = {}, 0
    while i < len(extra):
        token = extra[i]
        if not token.startswith("--") or len(token) < 3 or not getattr(args, "takes_options", False):
            parser.error(f"unrecognized arguments: {' '.join(extra[i:])}")
        name, eq, value = token[2:].partition("=")
        if not eq and name.replace("-", "_") in bools and (
                i + 1 >= len(extra) or extra[i + 1].lower() not in ("true", "false", "yes", "no", "on", "off", "1", "0")):
            value = "true"
        elif not eq:
            if i + 1 >= len(extra) or extra[i + 1].startswith("--"):
                parser.error(f"{token} needs a value")
            value, i = extra[i + 1], i + 1
        options[name.replace("-", "_")] = value
        i += 1
    args.options = options


def main(argv=None) -> int:
    try:
        from .plugins import default_registry

        registry = default_registry()
        parser = build_parser(registry)
        args, extra = parser.parse_known_args(argv)
        _extra_options(parser, args, extra, {n for n, (o, _) in registry.all_options().items() if o.type is bool})
        if getattr(args, "tp", (1,)) != (1,):  # tensor parallel: launch the ranks, or run as one of them
            from .distributed import tensor_parallel

            code = tensor_parallel(args, list(sys.argv[1:] if argv is None else argv))
            if code is not None:
                return code
        return args.fn(args, registry)
    except GenaccelError as e:
        print(f"genaccel: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        written = [str(o.report) for o in OPEN if o.report.exists()]
        print("genaccel: interrupted; " + (f"finished cases are in {', '.join(written)}" if written
                                           else "no report was written"), file=sys.stderr)
        return 130
    except Exception as e:
        if not out_of_memory(e):
            raise
        print(f"genaccel: error: out of memory ({first_line(e)}); try a smaller --batch-size, "
              "--seq-len or preset", file=sys.stderr)
        return 3
    finally:
        close_all()


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["main", "build_parser"]
