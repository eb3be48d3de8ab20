"""Typed specs for what plugins register, and the registry that holds them.

This module is light: registering imports no torch, transformers or model code.  A spec's
``build``, ``factory`` or ``apply`` may be an import string ``"package.module:attr"``, resolved
on first call.
"""

from __future__ import annotations

import difflib
import importlib
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import attrs

from .errors import GenaccelError, unknown_name
from .roles import Role, Workload, capabilities_of

#: Optimization stages, in the order a stack is applied.  Users list optimizations in any
#: order; the stack is sorted by stage (stable within a stage).
STAGES = ("weights", "attention", "cache", "compile", "graph", "algorithm")
#: Device types an optimization may name; a run's device is a string such as "cpu", "cuda", "cuda:1".
DEVICES = frozenset({"cpu", "cuda"})
DEVICE = re.compile(r"^[a-z][a-z0-9_]*(:[0-9]+)?$")

_WORKLOAD_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*/[a-z0-9][a-z0-9_-]*$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_OPTION_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_IMPORT = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def device_type(device: str) -> str:
    """``"cuda:1"`` → ``"cuda"``."""
    return device.split(":", 1)[0]


def check_device_name(device: str) -> str:
    if not isinstance(device, str) or not DEVICE.match(device):
        raise GenaccelError(f"device {device!r} is not a device name: use cpu, cuda or cuda:N")
    return device


def _name(pattern: re.Pattern[str], what: str):
    def check(instance, attribute, value):
        if not isinstance(value, str) or not pattern.match(value):
            raise ValueError(f"{what} name {value!r} must match {pattern.pattern}")

    return check


def _frozenset(value: Iterable[str]) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset({value})
    return frozenset(value)


# --- lazy callables -------------------------------------------------------------------------------


@attrs.frozen
class Lazy:
    """A callable named by an import string ``"package.module:attr"``, imported on first call."""

    target: str = attrs.field()

    @target.validator
    def _check(self, attribute, value):
        if not _IMPORT.match(value):
            raise ValueError(f"{value!r} is not an import string of the form 'package.module:attr'")

    def resolve(self) -> Callable[..., Any]:
        return _resolve(self.target)

    def __call__(self, *args, **kwargs):
        return _resolve(self.target)(*args, **kwargs)


_RESOLVED: dict[str, Callable[..., Any]] = {}


def _resolve(target: str) -> Callable[..., Any]:
    fn = _RESOLVED.get(target)
    if fn is None:
        module, _, attr = target.partition(":")
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        fn = _RESOLVED[target] = obj
    return fn


def _callable(value):
    """A callable as given, or an import string made a :class:`Lazy`."""
    if isinstance(value, str):
        return Lazy(value)
    if not callable(value):
        raise ValueError(f"{value!r} is neither callable nor an import string 'package.module:attr'")
    return value


def resolve(fn) -> Callable[..., Any]:
    """The object behind a spec's ``build``/``factory``/``apply`` (imports it when lazy)."""
    return fn.resolve() if isinstance(fn, Lazy) else fn


# --- options --------------------------------------------------------------------------------------

_TYPES = {int: "an integer", float: "a number", str: "a string", bool: "true or false", Path: "a path"}
_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}


@attrs.frozen
class Option:
    """A typed option that a workload, decoder or optimization declares (``--top-p 0.9``, ``top_p = 0.9``).

    ``min``/``max`` bound numbers (inclusive; ``min_exclusive`` makes the lower bound strict);
    ``choices`` lists the allowed strings.  ``default`` None means "not set" (the owner decides).
    """

    name: str = attrs.field(validator=_name(_OPTION_NAME, "option"))
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


def _options(value) -> tuple[Option, ...]:
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


def _role_tuple(value) -> tuple[type[Role], ...]:
    roles = tuple(value)
    if not all(isinstance(r, type) and issubclass(r, Role) for r in roles):
        raise ValueError(f"roles must be Role classes from genaccel.roles, got {roles}")
    return (Workload, *(r for r in dict.fromkeys(roles) if r is not Workload))


@attrs.frozen(kw_only=True)
class WorkloadSpec:
    """A model family and a task, named ``family/task``.

    ``build(options)`` returns a workload instance; ``roles`` (:mod:`genaccel.roles`) say which
    members it has.  ``capabilities`` are the things optimizations and decoders may ask for: the
    roles' capabilities plus the extra strings given.  ``unit``: the unit of work ("token", "item",
    "image", "frame"); throughput is units/s.
    """

    name: str = attrs.field(validator=_name(_WORKLOAD_NAME, "workload"))
    description: str
    build: Callable[..., Any] = attrs.field(converter=_callable)
    presets: tuple[str, ...] = attrs.field(converter=tuple)
    default_preset: str = attrs.field()
    default_decoder: str
    roles: tuple[type[Role], ...] = attrs.field(default=(), converter=_role_tuple)
    capabilities: frozenset[str] = attrs.field(converter=_frozenset, factory=frozenset)
    unit: str = "token"
    #: options of this workload alone (``--image-tokenizer PATH`` → ``image_tokenizer``)
    options: tuple[Option, ...] = attrs.field(default=(), converter=_options)
    plugin: str = ""

    def __attrs_post_init__(self):
        object.__setattr__(self, "capabilities", self.capabilities | capabilities_of(self.roles))

    def check_options(self, given: dict) -> dict:
        """Unknown workload options fail with the ones this workload takes."""
        who = self.name if self.options else f"workload {self.name}"
        return check_options(given, {o.name: o for o in self.options}, who)

    @default_preset.validator
    def _check_default_preset(self, attribute, value):
        if value not in self.presets:
            raise ValueError(f"default preset {value!r} is not among presets {self.presets}")

    @property
    def family(self) -> str:
        return self.name.split("/")[0]

    @property
    def reference_decoder(self) -> str | None:
        """The reference implementation on the same weights that ablations put beside the stacks, if any."""
        return next((d for d in REFERENCE_DECODERS if d in self.capabilities), None)


#: reference decoders (their capability has their name) → their label in tables
REFERENCE_DECODERS = {"hf-generate": "transformers generate", "diffusers-pipeline": "diffusers pipeline",
                      "llama-cpp": "llama.cpp"}


@attrs.frozen(kw_only=True)
class DecoderSpec:
    """A decoding strategy.  ``factory(**values)`` (the values of its declared ``options``, defaults
    filled) returns an object with ``run(ctx, batch)``."""

    name: str = attrs.field(validator=_name(_NAME, "decoder"))
    description: str
    factory: Callable[..., Any] = attrs.field(converter=_callable)
    requires: frozenset[str] = attrs.field(converter=_frozenset, factory=frozenset)
    options: tuple[Option, ...] = attrs.field(default=(), converter=_options)
    plugin: str = ""


@attrs.frozen(kw_only=True)
class OptimizationSpec:
    """A named transformation of a workload instance.

    ``requires``: capabilities the workload must offer.  ``needs``: other optimizations that
    must be in the same stack wherever they apply to the workload.  ``devices``: the device types
    where it can run (elsewhere it is a recorded skip).
    ``lossless``: whether outputs stay identical to the baseline's (the study's Table IV).
    ``apply(ctx)`` transforms ``ctx.instance`` and may return a note for the report; it reads its
    declared ``options`` from ``ctx.config.options``; it raises :class:`NotApplied` (why) where it
    would not help, and the run records the skip.
    """

    name: str = attrs.field(validator=_name(_NAME, "optimization"))
    description: str
    stage: str = attrs.field(validator=attrs.validators.in_(STAGES))
    apply: Callable[..., Any] = attrs.field(converter=_callable)
    lossless: bool = True
    requires: frozenset[str] = attrs.field(converter=_frozenset, factory=frozenset)
    needs: frozenset[str] = attrs.field(converter=_frozenset, factory=frozenset)
    devices: frozenset[str] = attrs.field(converter=_frozenset, default=DEVICES)
    options: tuple[Option, ...] = attrs.field(default=(), converter=_options)
    plugin: str = ""

    @devices.validator
    def _check_devices(self, attribute, value):
        if not value or not value <= DEVICES:
            raise ValueError(f"devices {sorted(value)} must be a non-empty subset of {sorted(DEVICES)}")


@attrs.frozen(kw_only=True)
class Command:
    """A subcommand a plugin adds: ``genaccel NAME ...``; ``add_arguments(parser)``, ``run(args, registry) -> int``."""

    name: str = attrs.field(validator=_name(_NAME, "command"))
    help: str
    add_arguments: Callable[..., Any] = attrs.field(converter=_callable)
    run: Callable[..., Any] = attrs.field(converter=_callable)
    plugin: str = ""


class NotApplied(Exception):
    """Raised by an optimization's ``apply``, before it changes anything, where it does not apply
    or does not win (e.g. on this device, for this workload's module): the run records it as
    skipped with the message as the reason, and the report says ``skipped: <name> (<reason>)``."""


@attrs.frozen(kw_only=True)
class Skip:
    """An optimization that was asked for but could not apply, with the reason."""

    name: str
    reason: str


@attrs.frozen(kw_only=True)
class Stack:
    """A resolved optimization stack: what applies, in stage order, and what was skipped."""

    applied: tuple[OptimizationSpec, ...]
    skipped: tuple[Skip, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.applied)

    @property
    def lossless(self) -> bool:
        return all(spec.lossless for spec in self.applied)


_KINDS = {WorkloadSpec: "workload", DecoderSpec: "decoder", OptimizationSpec: "optimization", Command: "command"}


@attrs.define
class Registry:
    """Everything the installed plugins registered, looked up by name."""

    _items: dict[str, dict[str, Any]] = attrs.field(
        factory=lambda: {kind: {} for kind in _KINDS.values()}, alias="_items"
    )

    def add(self, spec: Any, plugin: str = "") -> None:
        kind = _KINDS.get(type(spec))
        if kind is None:
            raise TypeError(f"cannot register {spec!r}: expected one of {[c.__name__ for c in _KINDS]}")
        if plugin and not spec.plugin:
            spec = attrs.evolve(spec, plugin=plugin)
        table = self._items[kind]
        if spec.name in table:
            raise GenaccelError(
                f"duplicate {kind} {spec.name!r}: registered by plugin {table[spec.name].plugin!r} "
                f"and again by {spec.plugin!r}"
            )
        for option in getattr(spec, "options", ()):
            known = self.all_options().get(option.name)
            if known is not None and known[0] != option:
                raise GenaccelError(
                    f"{kind} {spec.name!r} (plugin {spec.plugin!r}) declares option {option.flag} unlike "
                    f"{known[1][0]} does ({known[0]!r}): the same option name must mean the same thing everywhere"
                )
        table[spec.name] = spec

    def _get(self, kind: str, name: str) -> Any:
        try:
            return self._items[kind][name]
        except KeyError:
            raise unknown_name(kind, name, self._items[kind]) from None

    def workload(self, name: str) -> WorkloadSpec:
        return self._get("workload", name)

    def decoder(self, name: str) -> DecoderSpec:
        return self._get("decoder", name)

    def optimization(self, name: str) -> OptimizationSpec:
        return self._get("optimization", name)

    def command(self, name: str) -> Command:
        return self._get("command", name)

    @property
    def commands(self) -> dict[str, Command]:
        return dict(sorted(self._items["command"].items()))

    def all_options(self) -> dict[str, tuple[Option, list[str]]]:
        """Every declared option by name: the option and who declares it ("decoder top-p", ...)."""
        out: dict[str, tuple[Option, list[str]]] = {}
        for kind in ("workload", "decoder", "optimization"):
            for spec in self._items[kind].values():
                for option in spec.options:
                    out.setdefault(option.name, (option, []))[1].append(f"{kind} {spec.name}")
        return out

    def run_options(self, workload: WorkloadSpec, decoder: str | None, optimizations: Iterable[str]) -> dict[str, Option]:
        """The options a run takes: its workload's, its decoder's and its optimizations'."""
        specs = [workload, self.decoder(decoder or workload.default_decoder)]
        specs += [self.optimization(n) for n in optimizations if n.strip()]
        return {o.name: o for spec in specs for o in spec.options}

    def check_run_options(self, given: dict, workload: WorkloadSpec, decoder: str | None,
                          optimizations: Iterable[str]) -> dict:
        """``given`` parsed and checked against what the run declares; an option nobody in the run
        declares is an error that suggests the nearest flag or names who takes it."""
        optimizations = [n for n in optimizations if n.strip()]
        declared = self.run_options(workload, decoder, optimizations)
        who = f"{workload.name} with decoder {decoder or workload.default_decoder}"
        if optimizations:
            who += f" and --opt {','.join(optimizations)}"
        elsewhere = {name: owners for name, (_, owners) in self.all_options().items()}
        return check_options(given, declared, who, elsewhere=elsewhere)

    @property
    def workloads(self) -> dict[str, WorkloadSpec]:
        return dict(sorted(self._items["workload"].items()))

    @property
    def decoders(self) -> dict[str, DecoderSpec]:
        return dict(sorted(self._items["decoder"].items()))

    @property
    def optimizations(self) -> dict[str, OptimizationSpec]:
        return dict(sorted(self._items["optimization"].items(), key=lambda kv: (STAGES.index(kv[1].stage), kv[0])))

    def check_decoder(self, workload: WorkloadSpec, decoder_name: str) -> DecoderSpec:
        decoder = self.decoder(decoder_name)
        missing = decoder.requires - workload.capabilities
        if missing:
            usable = [d.name for d in self.decoders.values() if d.requires <= workload.capabilities]
            raise GenaccelError(
                f"decoder {decoder.name!r} needs {', '.join(sorted(missing))}, which workload "
                f"{workload.name!r} does not offer (decoders it can use: {', '.join(usable)})"
            )
        return decoder

    def resolve_stack(
        self, workload: WorkloadSpec, names: Iterable[str], device: str, *, strict: bool = True
    ) -> Stack:
        """Order ``names`` by stage and decide what applies.

        Unknown names, repeated names and a stack missing an optimization that another needs
        are errors.  A missing device is always a recorded skip.  A missing workload capability
        is an error when ``strict`` (an explicit request) and a recorded skip otherwise (a bench
        matrix that spans workloads).
        """
        names = [n.strip() for n in names if n.strip()]
        seen: set[str] = set()
        for name in names:
            if name in seen:
                raise GenaccelError(f"optimization {name!r} is listed twice in the stack {','.join(names)}")
            seen.add(name)
        specs = sorted((self.optimization(n) for n in names), key=lambda s: STAGES.index(s.stage))
        for spec in specs:
            # A needed optimization counts only where it applies to this workload.
            absent = {n for n in spec.needs - seen if self.optimization(n).requires <= workload.capabilities}
            if absent:
                fixed = ",".join(sorted(seen | absent, key=lambda n: STAGES.index(self.optimization(n).stage)))
                raise GenaccelError(
                    f"optimization {spec.name!r} needs {', '.join(sorted(absent))} in the same stack "
                    f"(try --opt {fixed})"
                )
        applied: list[OptimizationSpec] = []
        skipped: list[Skip] = []
        for spec in specs:
            missing = spec.requires - workload.capabilities
            if missing:
                reason = (
                    f"workload {workload.name} lacks capability {', '.join(sorted(missing))} "
                    f"(it offers: {', '.join(sorted(workload.capabilities)) or 'none'})"
                )
                if strict:
                    raise GenaccelError(f"optimization {spec.name!r} cannot apply: {reason}")
                skipped.append(Skip(name=spec.name, reason=reason))
            elif device_type(device) not in spec.devices:
                skipped.append(
                    Skip(name=spec.name, reason=f"needs device {' or '.join(sorted(spec.devices))}, run is on {device}")
                )
            elif any(s.name in spec.needs for s in skipped):
                skipped.append(Skip(name=spec.name, reason=f"depends on skipped {', '.join(sorted(spec.needs))}"))
            else:
                applied.append(spec)
        return Stack(applied=tuple(applied), skipped=tuple(skipped))
