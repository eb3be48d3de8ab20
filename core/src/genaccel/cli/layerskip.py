"""LayerSkip's commands: ``genaccel train-layerskip`` (early-exit weights) and ``genaccel
layerskip-sweep`` (the best exit layer and draft length), registered by :mod:`genaccel.plugin.builtin`
like any plugin's command.  Importing this module imports no torch (the run layer is imported inside
the commands).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import GenaccelError, unknown_name
from ..files import OutputDir, cache_dir, read_json_object
from ..plugin.role import check_roles, offers
from ..plugin.roles import EarlyExit
from .args import add_run_arguments, csv, device_arg, environment, out_dir, resolve_run
from .options import DeprecatedAlias


def train_arguments(p) -> None:
    p.add_argument("workload", help="a workload that can exit early, e.g. llama/t-t")
    model = p.add_mutually_exclusive_group()
    model.add_argument("--preset", help="random-weight model size to start from (default: the workload's)")
    model.add_argument("--checkpoint", help="local Hugging Face checkpoint directory to start from")
    p.add_argument("--out", help="directory for the trained checkpoint (default: "
                   "$GENACCEL_CACHE/checkpoints/FAMILY-PRESET-layerskip)")
    p.add_argument("--data", help="directory of the user's own training text")
    p.add_argument("--train-steps", type=int, default=200, help="optimizer steps (default 200)")
    p.add_argument("--steps", type=int, dest="train_steps", action=DeprecatedAlias, new="--train-steps")
    p.add_argument("--minutes", type=float, help="stop after this much wall time")
    p.add_argument("--batch-size", type=int, default=8, help="sequences per step (default 8)")
    p.add_argument("--seq-len", type=int, default=256, help="tokens per sequence (default 256)")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default 1e-3)")
    p.add_argument("--lr-warmup", type=int, default=20, help="steps of linear learning-rate warm-up (default 20)")
    p.add_argument("--max-dropout", type=float, default=0.1, help="layer dropout of the last layer")
    p.add_argument("--exit-scale", type=float, default=1.0, help="weight of the early-exit losses")
    p.add_argument("--rotation", type=int, default=4, help="supervise every R-th layer, rotating each step")
    p.add_argument("--exit-fraction", type=float, default=0.25, help="share of positions an early exit's loss uses")
    p.add_argument("--fp32", action="store_true", help="no bfloat16 autocast")
    p.add_argument("--device", type=device_arg, default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights, data order and dropout (default 0)")


def sweep_arguments(p) -> None:
    add_run_arguments(p)
    p.add_argument("--exit-layers", type=lambda t: tuple(int(x) for x in csv(t)), help="E values (default: N/8..N/2)")
    p.add_argument("--draft-lens", type=lambda t: tuple(int(x) for x in csv(t)), help="k values (default 2,3,4,6)")
    p.add_argument("--save", action="store_true", help="store the best pair in the checkpoint's layerskip.json")


def _early_exit_workload(registry, name):
    spec = registry.workload(name)
    if not offers(spec.roles, EarlyExit):
        able = [w for w, s in registry.workloads.items() if offers(s.roles, EarlyExit)]
        raise GenaccelError(f"workload {name!r} cannot exit early; workloads that can: {', '.join(able) or 'none installed'}")
    return spec


def train(args, registry) -> int:
    # imported when the command runs: `list` and `--help` stay free of torch
    from ..llm.train import TrainConfig, train_early_exit
    from ..plugin.specs import BuildOptions
    from ..run.resolve import check_device

    spec = _early_exit_workload(registry, args.workload)
    if args.preset and args.preset not in spec.presets:
        raise unknown_name(f"preset of {spec.name}", args.preset, spec.presets)
    check_device(args.device)
    try:
        config = TrainConfig(
            steps=args.train_steps, minutes=args.minutes, batch_size=args.batch_size, seq_len=args.seq_len, lr=args.lr,
            warmup=args.lr_warmup, max_dropout=args.max_dropout, exit_scale=args.exit_scale, rotation=args.rotation,
            exit_fraction=args.exit_fraction, autocast=not args.fp32, seed=args.seed,
        )
    except (ValueError, TypeError) as e:
        raise GenaccelError(f"bad option: {e}") from None
    # imported when the command runs: `list` and `--help` stay free of torch
    import torch

    torch.manual_seed(args.seed)
    instance = spec.build(BuildOptions(preset=args.preset, checkpoint=args.checkpoint, device=args.device,
                                       dtype="float32", seed=args.seed, data=args.data))
    check_roles(spec.name, spec.roles, instance)
    if not args.out:
        source = args.preset or (Path(args.checkpoint).name if args.checkpoint else spec.default_preset)
        args.out = str(cache_dir() / "checkpoints" / f"{spec.family}-{source}-layerskip")
    OutputDir(args.out, overwrite=True, report="config.json")  # checked, created and locked before training
    info = train_early_exit(instance, instance.training_texts(), Path(args.out), config,
                            source=Path(args.checkpoint) if args.checkpoint else None)
    t = info["trained"]
    final = t["final_loss"] or {}
    print(f"trained {t['steps']} steps ({t['tokens']} tokens) in {t['seconds']:.0f} s; "
          f"final loss {final.get('loss', float('nan')):.3f}")
    print(f"checkpoint: {args.out} (use --checkpoint {args.out}; `genaccel layerskip-sweep {spec.name} "
          f"--checkpoint {args.out} --save` picks the exit layer and draft length)")
    return 0


def sweep(args, registry) -> int:
    spec = _early_exit_workload(registry, args.workload)
    run = resolve_run(args, registry, args.opt)
    config = run.config
    if args.save and not config.checkpoint:
        raise GenaccelError("--save writes into a checkpoint directory: give --checkpoint DIR")
    out = out_dir(args, "layerskip-sweep")
    OutputDir(out, overwrite=args.overwrite, report="sweep.json")  # checked, created and locked before any work
    from ..llm.speculative import SETTINGS_FILE  # the run layer (torch) once every name is right
    from ..report.html_pages import write_sweep_html
    from ..report.results import SCHEMA_VERSION
    from ..report.store import write_json
    from ..report.tables import table
    from ..run.layerskip import default_pairs, sweep_pairs
    from ..run.prepare import prepare

    ctx = prepare(run)
    exits, lens = default_pairs(ctx.instance.model.num_layers, args.exit_layers or (), args.draft_lens or ())
    print(f"{spec.name}: plain greedy, then {len(exits) * len(lens)} (E, k) pairs", file=sys.stderr)
    found = sweep_pairs(ctx, exits, lens)
    tokens, best = found["tokens"], found["best"]
    print(f"plain greedy: {tokens / found['greedy_s']:.1f} tok/s ({'+'.join(ctx.stack.names) or 'baseline'})")
    print(table(["E", "k", "acceptance", "tokens/cycle", "tok/s", "× greedy", "same tokens"],
                [[str(r["exit_layer"]), str(r["draft_len"]), f"{r['acceptance_rate']:.3f}", f"{r['tokens_per_cycle']:.2f}",
                  f"{tokens / r['seconds']:.1f}", f"{r['speedup']:.2f}×", "yes" if r["same_tokens"] else "NO"]
                 for r in found["pairs"]]))
    print(f"\nbest: exit layer {best['exit_layer']}, draft length {best['draft_len']} ({best['speedup']:.2f}×)")
    doc = {"schema_version": SCHEMA_VERSION, "kind": "layerskip-sweep",
           "environment": environment(registry, config.device, args), "config": config.to_dict(), **found}
    write_json(out / "sweep.json", doc)
    write_sweep_html(doc, out / "sweep.html")
    print(f"sweep: {out / 'sweep.json'}, {out / 'sweep.html'}")
    if args.save:
        path = Path(config.checkpoint) / SETTINGS_FILE
        data = read_json_object(path, "LayerSkip settings") if path.exists() else {}
        data.update(exit_layer=best["exit_layer"], draft_len=best["draft_len"], sweep=found["pairs"])
        write_json(path, data)
        print(f"saved exit layer and draft length to {path}")
    return 0
