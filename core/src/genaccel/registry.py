"""Typed specs for what plugins register, and the registry that holds them."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from .errors import GenaccelError, unknown_name
from .roles import capabilities_of

#: Optimization stages, in the order a stack is applied.  Users list optimizations in any
#: order; the stack is sorted by stage (stable within a stage).
STAGES = ("weights", "attention", "cache", "compile", "graph", "algorithm")
DEVICES = frozenset({"cpu", "cuda"})

_WORKLOAD_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*/[a-z0-9][a-z0-9_-]*$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


def _name(pattern: re.Pattern[str], what: str):
    def check(instance, attribute, value):
        if not isinstance(value, str) or not pattern.match(value):
            raise ValueError(f"{what} name {value!r} must match {pattern.pattern}")

    return check


def _frozenset(value: Iterable[str]) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset({value})
    return frozenset(value)


@attrs.frozen(kw_only=True)
class WorkloadSpec:
    """A model family and a task, named ``family/task``.

    ``build(options)`` returns a workload instance (see :mod:`genaccel.workload`).
    ``capabilities`` are the things optimizations and decoders may ask for.
    """

    name: str = attrs.field(validator=_name(_WORKLOAD_NAME, "workload"))
    description: str
    build: Callable[..., Any] = attrs.field(validator=attrs.validators.is_callable())
    presets: tuple[str, ...] = attrs.field(converter=tuple)
    default_preset: str = attrs.field()
    default_decoder: str
    capabilities: frozenset[str] = attrs.field(converter=_frozenset, factory=frozenset)
    #: the roles (genaccel.roles) its instances play; their capabilities join ``capabilities``
    roles: tuple = attrs.field(default=(), converter=tuple)
    #: options of this workload alone (``--image-tokenizer PATH`` → ``image_tokenizer``), name → help
    options: dict[str, str] = attrs.field(factory=dict, converter=dict, hash=False)
    plugin: str = ""

    def check_options(self, given: dict) -> None:
        """Unknown workload options fail with the ones this workload takes."""
        flags = {"--" + k.replace("_", "-") for k in self.options}
        for key in given:
            if key not in self.options:
                flag = "--" + key.replace("_", "-")
                if not flags:
                    raise GenaccelError(f"workload {self.name} takes no option {flag}")
                raise unknown_name(f"option of {self.name}", flag, flags)

    def __attrs_post_init__(self):
        object.__setattr__(self, "capabilities", self.capabilities | capabilities_of(self.roles))

    @default_preset.validator
    def _check_default_preset(self, attribute, value):
        if value not in self.presets:
            raise ValueError(f"default preset {value!r} is not among presets {self.presets}")

    @property
    def family(self) -> str:
        return self.name.split("/")[0]


@attrs.frozen(kw_only=True)
class DecoderSpec:
    """A decoding strategy.  ``factory(**options)`` returns an object with ``run(ctx, batch)``."""

    name: str = attrs.field(validator=_name(_NAME, "decoder"))
    description: str
    factory: Callable[..., Any] = attrs.field(validator=attrs.validators.is_callable())
    requires: frozenset[str] = attrs.field(converter=_frozenset, factory=frozenset)
    plugin: str = ""


@attrs.frozen(kw_only=True)
class OptimizationSpec:
    """A named transformation of a workload instance.

    ``requires``: capabilities the workload must offer.  ``needs``: other optimizations that
    must be in the same stack wherever they apply to the workload.  ``devices``: where it can run (elsewhere it is a recorded skip).
    ``lossless``: whether outputs stay identical to the baseline's (the study's Table IV).
    ``apply(ctx)`` transforms ``ctx.instance`` and may return a note for the report.
    """

    name: str = attrs.field(validator=_name(_NAME, "optimization"))
    description: str
    stage: str = attrs.field(validator=attrs.validators.in_(STAGES))
    apply: Callable[..., Any] = attrs.field(validator=attrs.validators.is_callable())
    lossless: bool = True
    requires: frozenset[str] = attrs.field(converter=_frozenset, factory=frozenset)
    needs: frozenset[str] = attrs.field(converter=_frozenset, factory=frozenset)
    devices: frozenset[str] = attrs.field(converter=_frozenset, default=DEVICES)
    plugin: str = ""

    @devices.validator
    def _check_devices(self, attribute, value):
        if not value or not value <= DEVICES:
            raise ValueError(f"devices {sorted(value)} must be a non-empty subset of {sorted(DEVICES)}")


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


_KINDS = {WorkloadSpec: "workload", DecoderSpec: "decoder", OptimizationSpec: "optimization"}


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
            elif device not in spec.devices:
                skipped.append(
                    Skip(name=spec.name, reason=f"needs device {' or '.join(sorted(spec.devices))}, run is on {device}")
                )
            elif any(s.name in spec.needs for s in skipped):
                skipped.append(Skip(name=spec.name, reason=f"depends on skipped {', '.join(sorted(spec.needs))}"))
            else:
                applied.append(spec)
        return Stack(applied=tuple(applied), skipped=tuple(skipped))
