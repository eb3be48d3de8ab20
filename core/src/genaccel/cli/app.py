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
from .options import add_option_arguments, given_options, unrecognized
from .profile import characterize_command, profile_command

EXIT_CODES = """exit codes:
  0    done
  1    compare --fail-above: a case regressed beyond the threshold and its noise
  2    wrong input (one line "genaccel: error: ..." says what); nothing was measured
  3    some cases failed (kept in the report), out of memory, or a file could not be written (disk full,
       unwritable): one line names it and what was finished
  130  interrupted (Ctrl-C); finished cases are in the report (bench --resume continues it)
  143  terminated (SIGTERM, as timeout and CI runners send): as 130"""


def _versions(registry) -> str:
    """``--version``: the core's version and every installed plugin's (the registry's ``versions``)."""
    from .. import __version__

    versions = dict(registry.versions) if registry is not None else {}
    versions.setdefault("genaccel", __version__)
    core = versions.pop("genaccel")
    return "\n".join([f"genaccel {core}", *(f"{name} {v}" for name, v in sorted(versions.items()))])


def _builtin_commands(sub) -> None:
    """The built-in commands' parsers (those of the plugins' commands are added after)."""
    p = sub.add_parser("list", help="installed workloads, decoders, optimizations and their options")
    p.add_argument("--json", action="store_true",
                   help="everything as JSON (workloads, decoders, optimizations, options)")
    p.add_argument("--options", dest="options_of", metavar="WORKLOAD",
                   help="only the options a run of WORKLOAD takes, by who declares them")
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
    p.add_argument("config", nargs="?", default="bench.toml", help="the bench TOML (default: bench.toml)")
    p.add_argument("--out", type=out_path, help="output directory (default: reports/<timestamp>)")
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
    p = sub.add_parser("generate", help="generate from one prompt: text, or the image or speech a workload makes")
    add_run_arguments(p, measure=False)
    p.add_argument("--prompt", required=True, help="the text to continue (or to draw, or to speak)")
    p.set_defaults(fn=generate_command)


def build_parser(registry=None) -> argparse.ArgumentParser:
    """The parser of the built-in commands and of those the plugins register (given ``registry``),
    every command that runs a workload taking the options the registry's specs declare."""
    parser = argparse.ArgumentParser(prog="genaccel", description="Characterize and accelerate generative inference.",
                                     epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=_versions(registry),
                        help="the core's and every installed plugin's version")
    sub = parser.add_subparsers(dest="command", required=True)
    _builtin_commands(sub)
    for command in (registry.commands.values() if registry is not None else ()):
        if command.name in sub.choices:
            raise GenaccelError(f"plugin {command.plugin!r} registers command {command.name!r}, which genaccel has")
        p = sub.add_parser(command.name, help=command.help)
        command.add_arguments(p)
        p.set_defaults(fn=command.run)
    if registry is not None:
        for p in sub.choices.values():
            if p.get_default("takes_options"):
                add_option_arguments(p, registry)
    return parser


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
    if extra:
        commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
        raise unrecognized(commands[args.command], args.command, extra)
    args.options = given_options(args)
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
