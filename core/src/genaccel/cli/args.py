"""What every command that runs a workload shares: its arguments (:func:`add_run_arguments`), the
resolved runs they describe (:func:`resolve_runs`), the output folder, the report environment and
the printed case table.  Commands a plugin registers use these too.

Light at import: the run layer (torch) is imported inside the functions that need it, so that
``genaccel list`` and ``--help`` stay free of torch.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..errors import GenaccelError
from ..plugin.specs import DTYPES, check_device_name
from ..run.config import default_warmup


def csv(text: str) -> tuple[str, ...]:
    """``A,B,C`` → ("A", "B", "C")."""
    return tuple(x.strip() for x in text.split(",") if x.strip())


def tp_sizes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in csv(text))
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


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1, e.g. 3")
    return value


def percent(text: str) -> float:
    try:
        value = float(text.rstrip("%"))
    except ValueError:
        value = -1.0
    if not 0 <= value < 100:
        raise argparse.ArgumentTypeError(f"{text!r} is not a percentage from 0 to 100, e.g. 5")
    return value


FORMATS = ("md", "csv", "json")  # genaccel.report.formats.FORMATS (that module is imported when printing)


def add_format_argument(p: argparse.ArgumentParser) -> None:
    """``--format md|csv|json``: what the command prints on stdout (its report files are written the same)."""
    p.add_argument("--format", choices=FORMATS, default="md",
                   help="what is printed on stdout: Markdown tables (default), CSV or JSON with the same numbers "
                        "(progress and the report's paths go to stderr then)")


def add_repeat_argument(p: argparse.ArgumentParser) -> None:
    """``--repeat N``: a case's timed batches run N times, for their spread (mean ± sd, 95% interval)."""
    p.add_argument("--repeat", type=positive_int, default=1,
                   help="run each case's timed batches N times; the report gives throughput's mean ± sd and its "
                        "95%% interval over them (default 1: no spread)")


def add_run_arguments(p: argparse.ArgumentParser, *, steps: bool = False, measure: bool = True) -> None:
    """The arguments of a command that runs one workload: the model, inputs, decoder, stack (or an
    ablation's ``--steps``), device, dtype, output folder, tensor-parallel size, and with ``measure``
    what a timed run adds (batches, samples, warm-up, input lengths, replacing a report).  The options
    the registry's specs declare are added by the parser (:func:`genaccel.cli.options.add_option_arguments`)."""
    p.add_argument("workload", help="family/task, e.g. llama/t-t (see `genaccel list`)")
    model = p.add_mutually_exclusive_group()
    model.add_argument("--preset", help="random-weight model size (default: the workload's)")
    model.add_argument("--checkpoint", help="local Hugging Face checkpoint directory")
    p.add_argument("--data", help="directory of the user's own inputs")
    p.add_argument("--decoder", help="decoding strategy (default: the workload's)")
    if steps:
        p.add_argument("--steps", type=csv, required=True, help="optimizations added one at a time: A,B,C")
        p.add_argument("--no-reference", action="store_true",
                       help="skip the reference (transformers' generate, diffusers' pipeline)")
    else:
        p.add_argument("--opt", type=csv, default=(), help="optimization stack, any order: A,B,...")
    if measure:
        p.add_argument("--batch-size", type=int, default=1, help="samples per batch (default 1)")
        p.add_argument("--samples", type=int, default=4,
                       help="samples to time (rounded up to whole batches; default 4)")
    p.add_argument("--max-new-tokens", type=int, help="new tokens per sample (default: the paper's distribution)")
    if measure:
        p.add_argument("--seq-len", type=int,
                       help="fix every sample's input length (default: the paper's distribution)")
    p.add_argument("--device", type=device_arg, default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--dtype", choices=DTYPES, default="float32",
                   help="weights and activations; bfloat16 and float16 are lossy relative to float32")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights and inputs (default 0)")
    if measure:
        p.add_argument("--warmup", type=int, default=None, help="warm-up generations (default 1, 2 with compile)")
    p.add_argument("--cache-len", type=int, help="KV cache positions (default: fit the samples)")
    p.add_argument("--out", type=out_path, help="output directory (default: runs/<command>-<timestamp>)")
    if measure:
        p.add_argument("--overwrite", action="store_true", help="replace a report already in --out")
    p.add_argument("--tp", type=tp_sizes, default=(1,), help="tensor-parallel ranks (ablate: a list, e.g. 1,2,4, "
                   "for a scaling table)")
    p.set_defaults(takes_options=True)
    p.epilog = ("The workload, the decoder and each optimization of the run take their own options, listed above "
                "by who declares them; `genaccel list --options WORKLOAD` shows those a workload's runs take.")


#: RunConfig fields a command may lack (``generate`` times nothing): absent, the RunConfig default holds
_MEASURE_FIELDS = ("batch_size", "samples", "seq_len")


def resolve_runs(args, registry, runs, *, strict: bool = True) -> list:
    """One resolved run (:class:`genaccel.run.resolve.ResolvedRun`) per (optimizations, decoder) of
    ``runs``, each given the options it takes of those on the command line: every name, option and
    the device checked once, before any work; an option no run takes is an error."""
    from ..run.config import RunConfig  # the run layer: torch stays out of list and --help
    from ..run.resolve import resolve

    spec = registry.workload(args.workload)
    fields = vars(args)  # what the command declares (generate: no measuring fields)
    given = dict(fields.get("options", {}))
    used, resolved = set(), []
    for optimizations, decoder in runs:
        decoder = decoder or args.decoder
        warmup = fields.get("warmup")
        if warmup is None:
            warmup = default_warmup(optimizations)
        takes = registry.run_options(spec, decoder, optimizations)
        options = {k: v for k, v in given.items() if k in takes}
        used |= options.keys()
        try:
            config = RunConfig(
                workload=args.workload, preset=args.preset, checkpoint=args.checkpoint, data=args.data,
                decoder=decoder, optimizations=optimizations, max_new_tokens=args.max_new_tokens, device=args.device,
                dtype=args.dtype, seed=args.seed, warmup=warmup, cache_len=args.cache_len, options=options,
                repeat=fields.get("repeat", 1), tp=max(fields.get("tp", (1,))),
                **{f: v for f, v in fields.items() if f in _MEASURE_FIELDS})
        except (ValueError, TypeError) as e:
            raise GenaccelError(f"bad option: {e}") from None
        resolved.append(resolve(registry, config, strict=strict))
    unused = {k: v for k, v in given.items() if k not in used}
    if unused:
        optimizations, decoder = runs[-1]
        registry.check_run_options(unused, spec, decoder or args.decoder, optimizations)  # raises
    return resolved


def resolve_run(args, registry, optimizations=(), decoder=None):
    """The one run of a command (``--opt``), resolved."""
    return resolve_runs(args, registry, [(tuple(optimizations), decoder)])[0]


def out_dir(args, kind: str) -> Path:
    """``--out``, else ``runs/<kind>-<timestamp>``."""
    if args.out:
        return Path(args.out)
    return Path("runs") / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"


def environment(registry, device: str, args=None) -> dict:
    """The report's environment block: its provenance (time, ``args``' command line, the checkout's
    commit), versions (the registry's plugins and their dependencies), the device and its probes."""
    from ..engine.machine import measure_bandwidth  # torch: imported when a command measures
    from ..report.environment import environment as capture

    return capture(device, registry.versions, measure_bandwidth(device),
                   command_line=getattr(args, "command_line", None))


def print_cases(cases, fmt: str = "md") -> None:
    """The cases of a report as the Markdown table of its summary (a bench's rows name their workload),
    or their records as CSV or JSON (``fmt``)."""
    # imported when the command runs: `list` and `--help` stay free of torch
    from ..report.formats import case_records, render_records
    from ..report.tables import CASE_HEADER, case_row, table

    if fmt != "md":
        print(render_records(case_records(cases), fmt))
        return
    header, rows = CASE_HEADER, [case_row(c) for c in cases]
    if len({c.get("workload") for c in cases}) > 1:
        header, rows = ["workload", *header], [[str(c.get("workload")), *r] for c, r in zip(cases, rows)]
    print(table(header, rows))


def say(args, text: str) -> None:
    """A line for the person (where the report is, what was skipped): on stdout with Markdown, on stderr
    when stdout carries CSV or JSON."""
    print(text, file=sys.stdout if getattr(args, "format", "md") == "md" else sys.stderr)


def failed_cases(cases) -> int:
    """0 when every case asked for ran, else 3 with a line naming the failed ones."""
    failed = [c for c in cases if c.get("status") not in ("ok", "skipped")]
    if failed:
        print(f"genaccel: {len(failed)} of {len(cases)} cases failed: "
              + "; ".join(f"{c.get('workload')} {c.get('label')}: {c.get('status')}" for c in failed), file=sys.stderr)
        return 3
    return 0
