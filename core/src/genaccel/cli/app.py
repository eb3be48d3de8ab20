"""The ``genaccel`` command line: the parser of the built-in commands and of those plugins register,
and ``main``, which turns a user's error into one line and an exit code.

Only light modules are imported here: each command imports the run layer (torch) when it runs, so
that ``genaccel list``, ``--help`` and a misspelt name answer in a fraction of a second.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

from ..errors import GenaccelError, OutputError, disk_fault, first_line, out_of_memory
from ..files import OPEN, close_all
from ..plugin.manager import default_registry
from .args import add_format_argument, add_repeat_argument, add_run_arguments, csv, device_arg, out_path, percent
from .generate import generate_command
from .listing import compare_command, list_command
from .measure import ablate_command, bench_command, run_command
from .profile import characterize_command, profile_command

EXIT_CODES = """exit codes:
  0    done
  1    compare --fail-above: a case regressed beyond the threshold and its noise
  2    wrong input (one line "genaccel: error: ..." says what); nothing was measured
  3    some cases failed (kept in the report), out of memory, or a file could not be written (disk full,
       unwritable): one line names it and what was finished
  130  interrupted (Ctrl-C); finished cases are in the report (bench --resume continues it)
  143  terminated (SIGTERM, as timeout and CI runners send): as 130"""


def build_parser(registry=None) -> argparse.ArgumentParser:
    """The parser of the built-in commands and of those the plugins register (given ``registry``)."""
    parser = argparse.ArgumentParser(prog="genaccel", description="Characterize and accelerate generative inference.",
                                     epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="installed workloads, decoders, optimizations and their options")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=list_command)
    p = sub.add_parser("run", help="measure one workload with one optimization stack")
    add_run_arguments(p)
    add_repeat_argument(p)
    add_format_argument(p)
    p.set_defaults(fn=run_command)
    p = sub.add_parser("ablate", help="baseline, then each cumulative stack, with speedups")
    add_run_arguments(p, steps=True)
    add_repeat_argument(p)
    add_format_argument(p)
    p.set_defaults(fn=ablate_command)
    p = sub.add_parser("bench", help="the matrix of a bench TOML over every installed plugin")
    p.add_argument("config", nargs="?", default="bench.toml")
    p.add_argument("--out", type=out_path)
    p.add_argument("--resume", action="store_true", help="continue the report in --out, skipping its finished cases")
    p.add_argument("--devices", type=lambda t: tuple(device_arg(x) for x in csv(t)), default=(),
                   help="run independent cases in parallel, one process per device: cuda:0,cuda:1 (or cpu,cpu)")
    p.add_argument("--overwrite", action="store_true", help="replace a report already in --out")
    add_format_argument(p)
    p.set_defaults(fn=bench_command)
    p = sub.add_parser("compare", help="per-case deltas over report.json files (a series: the first is the reference)")
    p.add_argument("reports", nargs="+", type=Path, metavar="REPORT",
                   help="two or more report.json files, oldest first; the last is judged against the first")
    p.add_argument("--fail-above", type=percent, metavar="PCT",
                   help="exit 1 when a case's throughput fell more than PCT percent and more than its noise (the 95%% "
                        "intervals of its repetitions); INVALID (contended) cases are never counted")
    add_format_argument(p)
    p.set_defaults(fn=compare_command)
    for name, fn, what in (("profile", profile_command, "operator time breakdown per phase (Fig. 4 form)"),
                           ("characterize", characterize_command,
                            "sequence lengths and latency distribution (Table II, Fig. 3)")):
        p = sub.add_parser(name, help=what)
        add_run_arguments(p)
        p.add_argument("workloads", nargs="*", default=[], help="more workloads with the same options")
        p.set_defaults(fn=fn)
    p = sub.add_parser("generate", help="generate text from a prompt")
    add_run_arguments(p)
    p.add_argument("--prompt", required=True)
    p.set_defaults(fn=generate_command)
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


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised wherever the process is, so that a run ends as it does on Ctrl-C (the finished
    cases kept, the output directory released, worker processes stopped)."""


def _on_sigterm(signum, frame):
    raise Terminated()


@contextmanager
def _sigterm_ends_like_sigint():
    """SIGTERM raises :class:`Terminated` while a command runs (main thread only; the previous handler
    is restored after, for in-process callers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _kept() -> str:
    """What a run that stops early leaves: the reports of this process's output directories."""
    written = [str(o.report) for o in OPEN if o.report.exists()]
    return f"finished cases are in {', '.join(written)}" if written else "no report was written"


def _command(argv) -> int:
    registry = default_registry()
    parser = build_parser(registry)
    args, extra = parser.parse_known_args(argv)
    _extra_options(parser, args, extra, {n for n, (o, _) in registry.all_options().items() if o.type is bool})
    args.command_line = ["genaccel", *(sys.argv[1:] if argv is None else argv)]  # the report's provenance
    if getattr(args, "tp", (1,)) != (1,):  # tensor parallel: launch the ranks, or run as one of them
        from .tp import tensor_parallel

        code = tensor_parallel(args, list(sys.argv[1:] if argv is None else argv), main)
        if code is not None:
            return code
    return args.fn(args, registry)


def main(argv=None) -> int:
    try:
        with _sigterm_ends_like_sigint():
            return _command(argv)
    except OutputError as e:  # a full disk or an unwritable file: the run went, part of its writing did not
        print(f"genaccel: error: {e}; {_kept()}", file=sys.stderr)
        return 3
    except GenaccelError as e:
        print(f"genaccel: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        how = "terminated (SIGTERM)" if isinstance(e, Terminated) else "interrupted"
        print(f"genaccel: {how}; {_kept()}", file=sys.stderr)
        return 143 if isinstance(e, Terminated) else 130
    except Exception as e:
        if disk_fault(e):  # a write no writer of genaccel's wrapped (a library's own cache ...)
            where = f" {e.filename!r}" if getattr(e, "filename", None) else ""
            print(f"genaccel: error: cannot write{where}: {e.strerror or first_line(e)}; {_kept()}", file=sys.stderr)
            return 3
        if not out_of_memory(e):
            raise
        print(f"genaccel: error: out of memory ({first_line(e)}); try a smaller --batch-size, "
              "--seq-len or preset", file=sys.stderr)
        return 3
    finally:
        close_all()
