"""The registry: everything the installed plugins registered, looked up by name, with the options a
run takes and the stack it resolves to.  Light: no torch."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from ..errors import GenaccelError, unknown_name
from .options import Option, check_options
from .specs import STAGES, Command, DecoderSpec, OptimizationSpec, Skip, Stack, WorkloadSpec, device_type

_KINDS = {WorkloadSpec: "workload", DecoderSpec: "decoder", OptimizationSpec: "optimization", Command: "command"}


@attrs.define
class Registry:
    """Everything the installed plugins registered, looked up by name."""

    _items: dict[str, dict[str, Any]] = attrs.field(
        factory=lambda: {kind: {} for kind in _KINDS.values()}, alias="_items"
    )
    #: the installed genaccel distributions (core and plugins) and their versions, for report environments
    versions: dict[str, str] = attrs.field(factory=dict)

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

    def workload_options(self, workload: WorkloadSpec) -> dict[str, tuple[Option, list[str]]]:
        """The options some run of ``workload`` takes, by name, each with who declares it among the
        workload itself, the decoders it can use and the optimizations that can apply to it."""
        specs = [("workload", workload)]
        specs += [("decoder", d) for d in self.decoders.values() if not workload.offers(d.requires)]
        specs += [("optimization", o) for o in self.optimizations.values() if not workload.offers(o.requires)]
        out: dict[str, tuple[Option, list[str]]] = {}
        for kind, spec in specs:
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
        missing = workload.offers(decoder.requires)
        if missing:
            usable = [d.name for d in self.decoders.values() if not workload.offers(d.requires)]
            raise GenaccelError(
                f"decoder {decoder.name!r} needs role {', '.join(_named(missing))}, which workload "
                f"{workload.name!r} does not play (decoders it can use: {', '.join(usable)})"
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
            absent = {n for n in spec.needs - seen if not workload.offers(self.optimization(n).requires)}
            if absent:
                fixed = ",".join(sorted(seen | absent, key=lambda n: STAGES.index(self.optimization(n).stage)))
                raise GenaccelError(
                    f"optimization {spec.name!r} needs {', '.join(sorted(absent))} in the same stack "
                    f"(try --opt {fixed})"
                )
        applied: list[OptimizationSpec] = []
        skipped: list[Skip] = []
        for spec in specs:
            missing = workload.offers(spec.requires)
            if missing:
                reason = (
                    f"workload {workload.name} does not play role {', '.join(_named(missing))} "
                    f"(it offers: {', '.join(workload.capabilities) or 'none'})"
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


def _named(roles) -> list[str]:
    """Roles as ``Name (capability)``."""
    return [f"{r.__name__} ({r.capability})" if r.capability else r.__name__ for r in roles]
