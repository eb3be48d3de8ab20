"""The options that workloads, decoders and optimizations declare, as real argparse arguments: each
shown in ``--help`` under the group of those who declare it, with its type or choices and its help,
and collected into ``args.options`` (name → the text given) for the run to check against what its
workload, decoder and stack take.  Also the deprecated spelling of a renamed flag.  Light: no torch.

The values stay text until the run resolves them (:meth:`genaccel.plugin.registry.Registry.check_run_options`):
one option may be declared by several owners, and only the run knows whose it is; that check gives
the one-line error (``--top-p must be > 0 and <= 1``) with the nearest name or its owners.
"""

from __future__ import annotations

import argparse
import difflib
from pathlib import Path

from ..errors import GenaccelError
from ..files import warn

_DEST = "option:"  # argparse dest prefix of a declared option: never a built-in argument's name
_METAVARS = {int: "N", float: "X", str: "TEXT", bool: "BOOL", Path: "PATH"}


def _help(option) -> str:
    default = "" if option.default is None else f" (default {option.default})"
    bare = "; alone it means true" if option.type is bool else ""
    return (option.help or option.name.replace("_", " ")) + default + bare


def _group_title(owners: list[str]) -> str:
    """``["workload a/b", "workload a/c", "decoder x"]`` → ``"options of workload a/b, a/c; decoder x"``."""
    by_kind: dict[str, list[str]] = {}
    for owner in owners:
        kind, _, name = owner.partition(" ")
        by_kind.setdefault(kind, []).append(name)
    return "options of " + "; ".join(f"{kind} {', '.join(names)}" for kind, names in by_kind.items())


def add_option_arguments(p: argparse.ArgumentParser, registry) -> None:
    """Every option the registry's workloads, decoders and optimizations declare, one argument each,
    grouped by who declares it; a bool option may stand alone (``--allow-missing-weights``)."""
    groups: dict[tuple[str, ...], argparse._ArgumentGroup] = {}
    for name, (option, owners) in registry.all_options().items():
        key = tuple(owners)
        if key not in groups:
            groups[key] = p.add_argument_group(_group_title(owners))
        kwargs = {"dest": _DEST + name, "default": argparse.SUPPRESS, "help": _help(option)}
        if option.choices:
            kwargs["metavar"] = "{" + ",".join(map(str, option.choices)) + "}"
        else:
            kwargs["metavar"] = _METAVARS[option.type]
        if option.type is bool:
            kwargs.update(nargs="?", const="true")
        try:
            groups[key].add_argument(option.flag, **kwargs)
        except argparse.ArgumentError:
            raise GenaccelError(f"{owners[0]} declares option {option.flag}, which is one of genaccel's own "
                                f"flags of `genaccel {p.prog.split()[-1]}`; give the option another name") from None


def given_options(args) -> dict[str, str]:
    """The declared options given on the command line: name → text."""
    return {k[len(_DEST):]: v for k, v in vars(args).items() if k.startswith(_DEST)}


def unrecognized(parser: argparse.ArgumentParser, command: str, extra: list[str]) -> GenaccelError:
    """The one-line error for arguments ``genaccel COMMAND`` does not take (``parser`` is the
    command's): the first of them, the nearest flag the command has, and where they are listed."""
    flags = [s for a in parser._actions for s in a.option_strings if s.startswith("--") and s != "--help"]
    token = next((t for t in extra if t.startswith("-")), extra[0])
    if not token.startswith("-"):
        return GenaccelError(f"genaccel {command} takes no argument {token!r} here (`genaccel {command} --help` "
                             "lists what it takes)")
    flag = token.partition("=")[0]
    near = difflib.get_close_matches(flag, flags, n=1, cutoff=0.6)
    hint = f"; did you mean {near[0]!r}?" if near else ""
    return GenaccelError(f"unknown option {flag!r} of genaccel {command}{hint} (`genaccel {command} --help` lists "
                         "them; `genaccel list --options WORKLOAD`, those a workload's runs take)")


class DeprecatedAlias(argparse.Action):
    """An old spelling of a renamed flag: stores into the new flag's dest and warns once per process."""

    def __init__(self, option_strings, dest, *, new: str, **kwargs):
        self.new = new
        self.warned = False
        super().__init__(option_strings, dest, help=f"deprecated spelling of {new}", **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        if not self.warned:
            warn(f"{option_string} is deprecated here; use {self.new} (it means the same)")
            self.warned = True
        setattr(namespace, self.dest, values)
