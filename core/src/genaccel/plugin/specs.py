"""Typed specs of what plugins register (workloads, decoders, optimizations, commands), what a
workload's ``build`` receives (:class:`BuildOptions`), and the resolved stack of a run.

Light: registering imports no torch, transformers or model code.  A spec's ``build``, ``factory``,
``apply`` or a command's functions may be an import string ``"package.module:attr"``, resolved on
first call.  Decoders and optimizations ``require`` roles (:mod:`genaccel.plugin.roles`); a workload
offers what its declared roles (and the roles they derive from) give.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import attrs

from ..errors import GenaccelError, unknown_name
from .options import Option, check_options, name_check, option_tuple
from .role import Role, capabilities_of
from .roles import Workload

#: Optimization stages, in the order a stack is applied.  Users list optimizations in any
#: order; the stack is sorted by stage (stable within a stage).
STAGES = ("weights", "attention", "cache", "compile", "graph", "algorithm", "memory")
#: Device types an optimization may name; a run's device is a string such as "cpu", "cuda", "cuda:1".
DEVICES = frozenset({"cpu", "cuda"})
DEVICE = re.compile(r"^[a-z][a-z0-9_]*(:[0-9]+)?$")
DTYPES = ("float32", "bfloat16", "float16")

_WORKLOAD_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*/[a-z0-9][a-z0-9_-]*$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_IMPORT = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def device_type(device: str) -> str:
    """``"cuda:1"`` → ``"cuda"``."""
    return device.split(":", 1)[0]


def check_device_name(device: str) -> str:
    """``device`` if it names a device genaccel can time (cpu, cuda, cuda:N), else the one-line error
    that the command line (``--device``, ``--devices``), a bench TOML and a resolved run all give."""
    if not isinstance(device, str) or not DEVICE.match(device):
        raise GenaccelError(f"device {device!r} is not a device name: use cpu, cuda or cuda:N")
    kind = device_type(device)
    if kind not in DEVICES:
        raise GenaccelError(f"device {device!r} cannot be timed: genaccel times cpu and cuda devices (a {kind} "
                            "device's work is asynchronous and has no clock here); use cpu, cuda or cuda:N")
    return device


def _frozenset(value: Iterable[str]) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset({value})
    return frozenset(value)


def _roles(value) -> tuple[type[Role], ...]:
    """Roles given as one Role class or several; a string (a capability name) is refused."""
    roles = (value,) if isinstance(value, type) else tuple(value)
    if not all(isinstance(r, type) and issubclass(r, Role) for r in roles):
        raise ValueError(f"roles must be Role classes (genaccel.api.TokenModel, ...), not {roles!r}")
    return tuple(dict.fromkeys(roles))


def _workload_roles(value) -> tuple[type[Role], ...]:
    return (Workload, *(r for r in _roles(value) if r is not Workload))


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


@attrs.frozen(kw_only=True)
class Reference:
    """A reference implementation on the same weights that ablations put beside the stacks: its
    decoder, the bench TOML's name for it (``reference = ["transformers"]``), its label in tables,
    the capability of the role that offers it, and the module it needs beyond genaccel's own
    dependencies with the command that installs it (None: none)."""

    decoder: str
    engine: str
    label: str
    capability: str
    module: str | None = None
    install: str | None = None


#: The reference decoders, in the order a workload's default one is chosen.
REFERENCES = (
    Reference(decoder="hf-generate", engine="transformers", label="transformers generate", capability="hf-generate"),
    Reference(decoder="diffusers-pipeline", engine="diffusers", label="diffusers pipeline",
              capability="diffusers-pipeline"),
    Reference(decoder="llama-cpp", engine="llama.cpp", label="llama.cpp", capability="llama-cpp", module="llama_cpp",
              install="pip install 'genaccel[llamacpp]'"),
)
REFERENCE_DECODERS = {r.decoder: r.label for r in REFERENCES}
#: the GGUF types the llama-cpp decoder runs (its ``gguf_type``), each with the genaccel precision it is set
#: against (a weight-only quantization, else a dtype): genaccel's exporter writes f32, f16, bf16 and q8_0;
#: llama.cpp's quantizer makes q4_0 and q4_K_M from the f32 export (:mod:`genaccel.models.gguf`)
GGUF_PRECISION = {"f32": "float32", "f16": "float16", "bf16": "bfloat16", "q8_0": "int8-weight-only",
                  "q4_0": "int4-weight-only", "q4_K_M": "int4-weight-only"}


@attrs.frozen(kw_only=True)
class WorkloadSpec:
    """A model family and a task, named ``family/task``.

    ``build(options: BuildOptions)`` returns a workload instance playing every role in ``roles``
    (checked at build); ``presets`` name its random-weight sizes; ``unit`` is its unit of work
    ("token", "item", "image", "frame"), throughput being units/s; ``options`` are its own
    (``--image-tokenizer PATH`` → ``image_tokenizer``).  Its capabilities are its roles'.
    """

    name: str = attrs.field(validator=name_check(_WORKLOAD_NAME, "workload"))
    description: str
    build: Callable[..., Any] = attrs.field(converter=_callable)
    presets: tuple[str, ...] = attrs.field(converter=tuple)
    default_preset: str = attrs.field()
    default_decoder: str
    roles: tuple[type[Role], ...] = attrs.field(default=(), converter=_workload_roles)
    unit: str = "token"
    options: tuple[Option, ...] = attrs.field(default=(), converter=option_tuple)
    plugin: str = ""

    @default_preset.validator
    def _check_default_preset(self, attribute, value):
        if value not in self.presets:
            raise ValueError(f"default preset {value!r} is not among presets {self.presets}")

    @property
    def capabilities(self) -> tuple[str, ...]:
        return capabilities_of(self.roles)

    def offers(self, required: Iterable[type[Role]]) -> list[type[Role]]:
        """The required roles this workload does not offer (empty: it offers them all)."""
        return [r for r in required if not any(issubclass(role, r) for role in self.roles)]

    def check_options(self, given: dict) -> dict:
        """Unknown workload options fail with the ones this workload takes."""
        who = self.name if self.options else f"workload {self.name}"
        return check_options(given, {o.name: o for o in self.options}, who)

    @property
    def family(self) -> str:
        return self.name.split("/")[0]

    @property
    def reference_decoder(self) -> str | None:
        """The reference implementation on the same weights that ablations put beside the stacks, if any."""
        return next((r.decoder for r in REFERENCES if r.capability in self.capabilities), None)


@attrs.frozen(kw_only=True)
class DecoderSpec:
    """A decoding strategy.  ``factory(**values)`` (the values of its declared ``options``, defaults
    filled) returns an object with ``run(ctx, batch) -> BatchResult``; ``requires``: the roles a
    workload must offer; ``samples``: whether it draws its tokens at random (seeded), so that a lossy
    run's tokens are not compared one by one with the greedy reference (its scores are)."""

    name: str = attrs.field(validator=name_check(_NAME, "decoder"))
    description: str
    factory: Callable[..., Any] = attrs.field(converter=_callable)
    requires: tuple[type[Role], ...] = attrs.field(default=(), converter=_roles)
    options: tuple[Option, ...] = attrs.field(default=(), converter=option_tuple)
    samples: bool = False
    plugin: str = ""


@attrs.frozen(kw_only=True)
class OptimizationSpec:
    """A named transformation of a workload instance.

    ``requires``: roles the workload must offer (the members ``apply`` calls).  ``needs``: other
    optimizations that must be in the same stack wherever they apply to the workload.  ``devices``:
    the device types where it can run (elsewhere it is a recorded skip).  ``lossless``: whether
    outputs stay identical to the baseline's (the study's Table IV).  ``apply(ctx)`` transforms
    ``ctx.instance`` and may return a note for the report; it reads its declared ``options`` from
    ``ctx.config.options``; it raises :class:`NotApplied` (why) where it would not help, and the
    run records the skip.
    """

    name: str = attrs.field(validator=name_check(_NAME, "optimization"))
    description: str
    stage: str = attrs.field(validator=attrs.validators.in_(STAGES))
    apply: Callable[..., Any] = attrs.field(converter=_callable)
    lossless: bool = True
    requires: tuple[type[Role], ...] = attrs.field(default=(), converter=_roles)
    needs: frozenset[str] = attrs.field(converter=_frozenset, factory=frozenset)
    devices: frozenset[str] = attrs.field(converter=_frozenset, default=DEVICES)
    options: tuple[Option, ...] = attrs.field(default=(), converter=option_tuple)
    plugin: str = ""

    @devices.validator
    def _check_devices(self, attribute, value):
        if not value or not value <= DEVICES:
            raise ValueError(f"devices {sorted(value)} must be a non-empty subset of {sorted(DEVICES)}")


@attrs.frozen(kw_only=True)
class Command:
    """A subcommand a plugin adds: ``genaccel NAME ...``; ``add_arguments(parser)``, ``run(args, registry) -> int``."""

    name: str = attrs.field(validator=name_check(_NAME, "command"))
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


@attrs.frozen(kw_only=True)
class BuildOptions:
    """What a workload's ``build`` receives: the model (a preset or a checkpoint folder), where and
    in what dtype it runs, its seed, the user's own inputs (``data``), the workload's own options,
    where it writes files, and the tensor-parallel size of the run (a checkpoint is then read in
    slices, each rank its own)."""

    preset: str | None = None
    checkpoint: Path | None = attrs.field(default=None, converter=attrs.converters.optional(Path))
    device: str = attrs.field(default="cpu", validator=attrs.validators.matches_re(r"(cpu|cuda)(:[0-9]+)?"))
    dtype: str = attrs.field(default="float32", validator=attrs.validators.in_(DTYPES))
    seed: int = 0
    data: Path | None = attrs.field(default=None, converter=attrs.converters.optional(Path))
    options: dict = attrs.field(factory=dict, converter=dict, hash=False)
    out_dir: Path | None = attrs.field(default=None, converter=attrs.converters.optional(Path))
    tp: int = attrs.field(default=1, validator=attrs.validators.ge(1))

    def preset_in(self, presets, workload: str, default: str = "small") -> str:
        """The preset to build, ``default`` where the run names none: one of ``presets``, else the one-line error
        naming ``workload`` and listing them (a build called directly, past the run's own check)."""
        name = self.preset or default
        if name not in presets:
            raise unknown_name(f"preset of {workload}", name, presets)
        return name

    @property
    def torch_dtype(self):
        import torch  # on use: the plugin layer stays free of torch for `genaccel list`

        return getattr(torch, self.dtype)
