"""The ``genaccel`` command line."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import attrs

from .errors import GenaccelError
from .registry import STAGES


def _csv(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def _add_run_options(p: argparse.ArgumentParser, *, steps: bool = False) -> None:
    p.add_argument("workload", help="family/task, e.g. llama/t-t (see `genaccel list`)")
    model = p.add_mutually_exclusive_group()
    model.add_argument("--preset", help="random-weight model size (default: the workload's)")
    model.add_argument("--checkpoint", help="local Hugging Face checkpoint directory")
    p.add_argument("--data", help="directory of the user's own inputs")
    p.add_argument("--decoder", help="decoding strategy (default: the workload's)")
    if steps:
        p.add_argument("--steps", type=_csv, required=True, help="optimizations added one at a time: A,B,C")
        p.add_argument("--no-reference", action="store_true", help="skip transformers' generate as a reference")
    else:
        p.add_argument("--opt", type=_csv, default=(), help="optimization stack, any order: A,B,...")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--samples", type=int, default=4, help="samples to time (rounded up to whole batches)")
    p.add_argument("--max-new-tokens", type=int, help="new tokens per sample (default: the paper's distribution)")
    p.add_argument("--seq-len", type=int, help="fix every sample's input length (default: the paper's distribution)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--warmup", type=int, default=None, help="warm-up generations (default 1, 2 with compile)")
    p.add_argument("--cache-len", type=int, help="KV cache positions (default: fit the samples)")
    p.add_argument("--temperature", type=float, default=0.6)
    p.add_argument("--top-p", type=float, default=0.9)
    p.add_argument("--exit-layer", type=int, help="self-speculative: draft with layers [0, E) (default: saved or N/4)")
    p.add_argument("--draft-len", type=int, help="self-speculative: tokens drafted per cycle (default: saved or 4)")
    p.add_argument("--out", type=Path, help="output directory")


def _config(args, optimizations=(), decoder=None):
    from .runner import RunConfig

    warmup = args.warmup
    if warmup is None:
        warmup = 2 if {"compile", "cuda-graph"} & set(optimizations) else 1
    try:
        return RunConfig(
            workload=args.workload, preset=args.preset, checkpoint=args.checkpoint, data=args.data,
            decoder=decoder or args.decoder, optimizations=optimizations, batch_size=args.batch_size,
            samples=args.samples, max_new_tokens=args.max_new_tokens, seq_len=args.seq_len, device=args.device, dtype=args.dtype,
            seed=args.seed, warmup=warmup, cache_len=args.cache_len, temperature=args.temperature, top_p=args.top_p,
            exit_layer=args.exit_layer, draft_len=args.draft_len,
            workload_options=getattr(args, "workload_options", {}),
        )
    except (ValueError, TypeError) as e:
        raise GenaccelError(f"bad option: {e}") from None


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

    print(table(CASE_HEADER, [case_row(c) for c in cases]))


# --- commands ---------------------------------------------------------------------------------


def cmd_list(args, registry) -> int:
    data = {
        "workloads": [
            {"name": w.name, "plugin": w.plugin, "presets": list(w.presets), "default_preset": w.default_preset,
             "default_decoder": w.default_decoder, "capabilities": sorted(w.capabilities), "description": w.description,
             "options": {"--" + k.replace("_", "-"): v for k, v in w.options.items()}}
            for w in registry.workloads.values()
        ],
        "decoders": [
            {"name": d.name, "plugin": d.plugin, "requires": sorted(d.requires), "description": d.description}
            for d in registry.decoders.values()
        ],
        "optimizations": [
            {"name": o.name, "plugin": o.plugin, "stage": o.stage, "devices": sorted(o.devices), "lossless": o.lossless,
             "requires": sorted(o.requires), "needs": sorted(o.needs), "description": o.description}
            for o in registry.optimizations.values()
        ],
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
    return 0


def cmd_run(args, registry) -> int:
    from .report import SCHEMA_VERSION, render, write_json
    from .runner import run_case

    out = _out_dir(args, "run")
    config = attrs.evolve(_config(args, args.opt), out_dir=str(out / "outputs"))
    env = _environment(config.device)
    case = run_case(registry, config)
    doc = {"schema_version": SCHEMA_VERSION, "kind": "run", "environment": env, **case}
    write_json(out / "report.json", doc)
    render(doc, out)
    _print_cases([case])
    for s in case["skipped_optimizations"]:
        print(f"skipped {s['name']}: {s['reason']}")
    print(f"\nreport: {out / 'report.json'}, {out / 'report.md'}")
    return 0


def _run_cases(registry, configs, report, *, strict: bool):
    from .runner import run_case_safe

    for i, config in enumerate(configs, start=1):
        slug = re.sub(r"[^a-z0-9.+-]+", "-", f"{config.workload}-bs{config.batch_size}-{config.label}".lower())
        config = attrs.evolve(config, out_dir=str(report.dir / "outputs" / f"{i:02d}-{slug}"))
        print(f"[{i}/{len(configs)}] {config.workload} {config.preset or config.checkpoint or ''} "
              f"bs{config.batch_size} {config.label}", file=sys.stderr, flush=True)
        case = run_case_safe(registry, config, strict=strict)
        report.add(case)


def cmd_ablate(args, registry) -> int:
    from .report import Report, render, speedup_rows, table

    spec = registry.workload(args.workload)
    configs = []
    if not args.no_reference and "hf-generate" in spec.capabilities and not args.decoder:
        configs.append(_config(args, (), decoder="hf-generate"))
    for i in range(len(args.steps) + 1):
        configs.append(_config(args, args.steps[:i]))
    for c in configs:  # fail fast on names and impossible stacks, before hours of measuring
        registry.resolve_stack(spec, c.optimizations, c.device)
        registry.check_decoder(spec, c.decoder or spec.default_decoder)
    out = _out_dir(args, "ablate")
    report = Report(out, "ablate", _environment(args.device), {"steps": list(args.steps), **configs[-1].to_dict()})
    _run_cases(registry, configs, report, strict=True)
    render(report.doc, out)
    _print_cases(report.doc["cases"])
    print()
    print(table(["stack", "tok/s", "× baseline", "× previous step"], speedup_rows(report.doc["cases"])))
    print(f"\nreport: {out / 'report.json'}, {out / 'report.md'}")
    return 0


def cmd_bench(args, registry) -> int:
    from .config import BenchConfig
    from .report import Report, render

    bench = BenchConfig.from_toml(args.config)
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
    out = Path(args.out) if args.out else Path("reports") / time.strftime("%Y%m%d-%H%M%S")
    device = configs[0].device if configs else "cpu"
    report = Report(out, "bench", _environment(device), {"path": str(bench.path)})
    for case, reason in skipped:
        report.add({"label": "-", "status": "skipped", "workload": case.workload, "batch_size": 0, "device": "-",
                    "dtype": "-", "error": reason, "samples": []})
        print(f"skipped {case.workload}: {reason}", file=sys.stderr)
    _run_cases(registry, configs, report, strict=False)
    md = render(report.doc, out)
    profile_md = _bench_profiles(registry, [c for case in bench.cases if case.workload in registry.workloads
                                            for c in case.profile_configs()], report, out)
    if profile_md:
        md.write_text(md.read_text() + "\n## Where the time goes\n\n" + profile_md + "\n\n![breakdown](breakdown.png)\n")
    _print_cases([c for c in report.doc["cases"] if c["status"] != "skipped"])
    print(f"\nreport: {out / 'report.json'}, {md}")
    return 0


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

    print(compare(load(args.a), load(args.b)))
    return 0


def cmd_generate(args, registry) -> int:
    from .roles import PromptInput, TokenModel
    from .runner import _fit_cache, prepare
    from .workload import TextSample

    out = _out_dir(args, "generate")
    config = attrs.evolve(_config(args, args.opt), out_dir=str(out))
    if not args.prompt.strip():
        raise GenaccelError("--prompt is empty; give the text to continue")
    ctx = prepare(registry, config)
    inst = ctx.instance
    if ctx.has(PromptInput):  # input is more than text (an image, ...)
        sample = inst.prompt_sample(args.prompt, args.max_new_tokens, config.options)
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


def _multi_configs(args):
    """profile and characterize take several workloads with one set of run options."""
    configs = []
    for workload in [args.workload, *args.workloads]:
        args.workload = workload
        configs.append(_config(args, args.opt))
    return configs


def cmd_profile(args, registry) -> int:
    from .characterize import breakdown_markdown, plot_breakdown, profile_workload, work_markdown
    from .report import SCHEMA_VERSION, write_json

    configs = _multi_configs(args)
    out = _out_dir(args, "profile")
    out.mkdir(parents=True, exist_ok=True)
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
    from .characterize import characterize, characterize_markdown, plot_latency_distribution
    from .report import SCHEMA_VERSION, write_json
    from .runner import run_case

    configs = _multi_configs(args)
    out = _out_dir(args, "characterize")
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


def _early_exit_workload(registry, name):
    spec = registry.workload(name)
    if "early-exit" not in spec.capabilities:
        able = [w for w, s in registry.workloads.items() if "early-exit" in s.capabilities]
        raise GenaccelError(f"workload {name!r} cannot exit early; workloads that can: {', '.join(able) or 'none installed'}")
    return spec


def cmd_train_layerskip(args, registry) -> int:
    from .roles import check_roles
    from .runner import check_device
    from .train import TrainConfig, train_early_exit
    from .workload import BuildOptions

    spec = _early_exit_workload(registry, args.workload)
    if args.preset and args.preset not in spec.presets:
        from .errors import unknown_name

        raise unknown_name(f"preset of {spec.name}", args.preset, spec.presets)
    check_device(args.device)
    try:
        config = TrainConfig(
            steps=args.steps, minutes=args.minutes, batch_size=args.batch_size, seq_len=args.seq_len, lr=args.lr,
            warmup=args.lr_warmup, max_dropout=args.max_dropout, exit_scale=args.exit_scale, rotation=args.rotation,
            exit_fraction=args.exit_fraction, autocast=not args.fp32, seed=args.seed,
        )
    except (ValueError, TypeError) as e:
        raise GenaccelError(f"bad option: {e}") from None
    import torch

    torch.manual_seed(args.seed)
    instance = spec.build(BuildOptions(preset=args.preset, checkpoint=args.checkpoint, device=args.device,
                                       dtype="float32", seed=args.seed, data=args.data))
    check_roles(spec.name, spec.roles, instance)
    if not args.out:
        from .measure import cache_dir

        source = args.preset or (Path(args.checkpoint).name if args.checkpoint else spec.default_preset)
        args.out = str(cache_dir() / "checkpoints" / f"{spec.family}-{source}-layerskip")
    info = train_early_exit(instance, instance.training_texts(), Path(args.out), config,
                            source=Path(args.checkpoint) if args.checkpoint else None)
    t = info["trained"]
    final = t["final_loss"] or {}
    print(f"trained {t['steps']} steps ({t['tokens']} tokens) in {t['seconds']:.0f} s; "
          f"final loss {final.get('loss', float('nan')):.3f}")
    print(f"checkpoint: {args.out} (use --checkpoint {args.out}; `genaccel layerskip-sweep {spec.name} "
          f"--checkpoint {args.out} --save` picks the exit layer and draft length)")
    return 0


def cmd_layerskip_sweep(args, registry) -> int:
    from .decoding import generate, greedy_pick, loop_options
    from .report import table, write_json
    from .runner import make_batches, prepare, speculative_summary
    from .speculative import SETTINGS_FILE, speculate

    spec = _early_exit_workload(registry, args.workload)
    config = _config(args, args.opt)
    ctx = prepare(registry, config)
    inst = ctx.instance
    batches = make_batches(ctx)
    common = loop_options(ctx)

    def timed(fn):
        fn(batches[0])  # warm-up (compiles)
        t0 = time.perf_counter()
        results = [fn(b) for b in batches]
        return time.perf_counter() - t0, results

    n_layers = inst.model.num_layers
    exits = args.exit_layers or tuple(sorted({max(1, n_layers * i // 8) for i in range(1, 5)}))
    lens = args.draft_lens or (2, 3, 4, 6)
    print(f"{spec.name}: plain greedy, then {len(exits) * len(lens)} (E, k) pairs", file=sys.stderr)
    base_s, base = timed(lambda b: generate(inst.model, b, greedy_pick, **common))
    tokens = sum(len(o) for r in base for o in r.outputs)
    rows, records = [], []
    for e in exits:
        for k in lens:
            inst.model.reset_steps()  # each (E, k) compiles its own draft and verify steps
            secs, res = timed(lambda b, e=e, k=k: speculate(inst.model, b, exit_layer=e, draft_len=k, **common))
            same = all(r.outputs == q.outputs for r, q in zip(res, base))
            stats = speculative_summary([r.extra["speculative"] for r in res])
            rec = {"exit_layer": e, "draft_len": k, "seconds": secs, "speedup": base_s / secs,
                   "acceptance_rate": stats["acceptance_rate"], "tokens_per_cycle": stats["tokens_per_cycle"],
                   "same_tokens": same}
            records.append(rec)
            rows.append([str(e), str(k), f"{rec['acceptance_rate']:.3f}", f"{rec['tokens_per_cycle']:.2f}",
                         f"{tokens / secs:.1f}", f"{rec['speedup']:.2f}×", "yes" if same else "NO"])
            print(f"  E={e} k={k}: {rec['speedup']:.2f}×", file=sys.stderr, flush=True)
    best = max(records, key=lambda r: r["speedup"])
    print(f"plain greedy: {tokens / base_s:.1f} tok/s ({'+'.join(ctx.stack.names) or 'baseline'})")
    print(table(["E", "k", "acceptance", "tokens/cycle", "tok/s", "× greedy", "same tokens"], rows))
    print(f"\nbest: exit layer {best['exit_layer']}, draft length {best['draft_len']} ({best['speedup']:.2f}×)")
    out = _out_dir(args, "layerskip-sweep")
    write_json(out / "sweep.json", {"config": config.to_dict(), "greedy_s": base_s, "tokens": tokens, "pairs": records,
                                    "best": best})
    print(f"sweep: {out / 'sweep.json'}")
    if args.save:
        if not config.checkpoint:
            raise GenaccelError("--save writes into a checkpoint directory: give --checkpoint DIR")
        path = Path(config.checkpoint) / SETTINGS_FILE
        data = json.loads(path.read_text()) if path.exists() else {}
        data.update(exit_layer=best["exit_layer"], draft_len=best["draft_len"], sweep=records)
        path.write_text(json.dumps(data, indent=1))
        print(f"saved exit layer and draft length to {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genaccel", description="Characterize and accelerate generative inference.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="installed workloads, decoders and optimizations")
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
    p.add_argument("--out", type=Path)
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
    p = sub.add_parser("train-layerskip", help="continue training a model to exit early (LayerSkip recipe)")
    p.add_argument("workload")
    model = p.add_mutually_exclusive_group()
    model.add_argument("--preset")
    model.add_argument("--checkpoint")
    p.add_argument("--out", help="directory for the trained checkpoint (default: "
                   "$GENACCEL_CACHE/checkpoints/FAMILY-PRESET-layerskip)")
    p.add_argument("--data", help="directory of the user's own training text")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--minutes", type=float, help="stop after this much wall time")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-warmup", type=int, default=20)
    p.add_argument("--max-dropout", type=float, default=0.1, help="layer dropout of the last layer")
    p.add_argument("--exit-scale", type=float, default=1.0, help="weight of the early-exit losses")
    p.add_argument("--rotation", type=int, default=4, help="supervise every R-th layer, rotating each step")
    p.add_argument("--exit-fraction", type=float, default=0.25, help="share of positions an early exit's loss uses")
    p.add_argument("--fp32", action="store_true", help="no bfloat16 autocast")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(fn=cmd_train_layerskip)
    p = sub.add_parser("layerskip-sweep", help="search exit layer E and draft length k for self-speculative decoding")
    _add_run_options(p)
    p.add_argument("--exit-layers", type=lambda t: tuple(int(x) for x in _csv(t)), help="E values (default: N/8..N/2)")
    p.add_argument("--draft-lens", type=lambda t: tuple(int(x) for x in _csv(t)), help="k values (default 2,3,4,6)")
    p.add_argument("--save", action="store_true", help="store the best pair in the checkpoint's layerskip.json")
    p.set_defaults(fn=cmd_layerskip_sweep)
    p = sub.add_parser("generate", help="generate text from a prompt")
    _add_run_options(p)
    p.add_argument("--prompt", required=True)
    p.set_defaults(fn=cmd_generate)
    return parser


def _workload_options(parser: argparse.ArgumentParser, args, extra: list[str]) -> None:
    """Flags argparse does not know (``--image-tokenizer PATH``) become the workload's own options,
    checked against what the workload declares when the run is prepared."""
    options, i = {}, 0
    while i < len(extra):
        token = extra[i]
        if not token.startswith("--") or len(token) < 3 or not hasattr(args, "workload"):
            parser.error(f"unrecognized arguments: {' '.join(extra[i:])}")
        name, eq, value = token[2:].partition("=")
        if not eq:
            if i + 1 >= len(extra) or extra[i + 1].startswith("--"):
                parser.error(f"{token} needs a value")
            value, i = extra[i + 1], i + 1
        options[name.replace("-", "_")] = value
        i += 1
    args.workload_options = options


def main(argv=None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    _workload_options(parser, args, extra)
    try:
        from .plugins import default_registry

        return args.fn(args, default_registry())
    except GenaccelError as e:
        print(f"genaccel: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("genaccel: interrupted; finished cases are in the report", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["main", "build_parser"]
