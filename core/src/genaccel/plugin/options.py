"""Typed options that workloads, decoders and optimizations declare (``--top-p 0.9`` on the command
line, ``top_p = 0.9`` in a bench TOML), and how given values are checked against them.  Light: no torch."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

import attrs

from ..errors import GenaccelError, unknown_name

_OPTION_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def name_check(pattern: re.Pattern[str], what: str):
    """An attrs validator: the value is a string matching ``pattern``."""

    def check(instance, attribute, value):
        if not isinstance(value, str) or not pattern.match(value):
            raise ValueError(f"{what} name {value!r} must match {pattern.pattern}")

    return check


_TYPES = {int: "an integer", float: "a number", str: "a string", bool: "true or false", Path: "a path"}
_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}


@attrs.frozen
class Option:
    """A typed option that a workload, decoder or optimization declares (``--top-p 0.9``, ``top_p = 0.9``).

    ``min``/``max`` bound numbers (inclusive; ``min_exclusive`` makes the lower bound strict);
    ``choices`` lists the allowed strings.  ``default`` None means "not set" (the owner decides).
    """

    name: str = attrs.field(validator=name_check(_OPTION_NAME, "option"))
    type: type = attrs.field(validator=attrs.validators.in_(tuple(_TYPES)))
    default: Any = None
    help: str = attrs.field(default="", eq=False)  # specs may word it for themselves; the rest must agree
    choices: tuple | None = attrs.field(default=None, converter=attrs.converters.optional(tuple))
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def parse(self, text: str) -> Any:
        """A command-line value (text) → the checked value."""
        text = str(text).strip()
        try:
            if self.type is bool:
                if text.lower() not in _TRUE | _FALSE:
                    raise ValueError
                value = text.lower() in _TRUE
            else:
                value = self.type(text)
        except ValueError:
            raise GenaccelError(f"{self.flag} takes {_TYPES[self.type]}, got {text!r}") from None
        return self.check(value)

    def check(self, value: Any) -> Any:
        """A typed value (from TOML or code) → the value, converted where lossless (int → float, str → Path)."""
        if value is None:
            return None
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        elif self.type is Path and isinstance(value, str):
            value = Path(value)
        if not isinstance(value, self.type) or (self.type is not bool and isinstance(value, bool)):
            raise GenaccelError(f"{self.flag} takes {_TYPES[self.type]}, got {value!r}")
        if self.choices is not None and value not in self.choices:
            near = difflib.get_close_matches(str(value), [str(c) for c in self.choices], n=1, cutoff=0.5)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise GenaccelError(f"{self.flag} must be one of {', '.join(map(str, self.choices))}, got {value!r}{hint}")
        low = self.min is not None and (value <= self.min if self.min_exclusive else value < self.min)
        if low or (self.max is not None and value > self.max):
            bounds = []
            if self.min is not None:
                bounds.append(f"{'>' if self.min_exclusive else '>='} {self.min}")
            if self.max is not None:
                bounds.append(f"<= {self.max}")
            raise GenaccelError(f"{self.flag} must be {' and '.join(bounds)}, got {value!r}")
        return value

    def describe(self) -> dict:
        d = {"type": self.type.__name__, "default": None if self.default is None else str(self.default),
             "help": self.help}
        if self.choices:
            d["choices"] = [str(c) for c in self.choices]
        return d


def option_tuple(value) -> tuple[Option, ...]:
    options = tuple(value)
    names = [o.name for o in options]
    if len(set(names)) != len(names) or not all(isinstance(o, Option) for o in options):
        raise ValueError(f"options must be distinct Option records, got {names}")
    return options


def check_options(given: dict, declared: dict[str, Option], who: str, *, elsewhere: dict | None = None) -> dict:
    """``given`` (name → text from the command line, or typed from TOML) checked against ``declared``.

    An undeclared name is an error that suggests the nearest declared flag, or says which
    decoders or optimizations take it (``elsewhere``: name → their descriptions).
    """
    values = {}
    for name, value in given.items():
        option = declared.get(name)
        if option is None:
            raise _undeclared(name, declared, who, elsewhere or {})
        values[name] = option.parse(value) if isinstance(value, str) and option.type is not str else option.check(value)
    return values


def _undeclared(name: str, declared: dict[str, Option], who: str, elsewhere: dict[str, list[str]]) -> GenaccelError:
    flag = "--" + name.replace("_", "-")
    if name in elsewhere:
        return GenaccelError(f"option {flag} is not taken by {who}: it belongs to {', '.join(elsewhere[name])}")
    flags = [o.flag for o in declared.values()]
    if not difflib.get_close_matches(flag, flags, n=1, cutoff=0.5):
        others = {"--" + n.replace("_", "-"): owners for n, owners in elsewhere.items()}
        near = difflib.get_close_matches(flag, sorted(others), n=1, cutoff=0.5)
        if near:
            return GenaccelError(f"unknown option {flag}; did you mean {near[0]!r} (of {', '.join(others[near[0]])})?")
        if not flags:
            return GenaccelError(f"{who} takes no option {flag}")
    return unknown_name(f"option of {who}", flag, flags)

