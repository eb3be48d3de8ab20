"""One case's configuration (:class:`RunConfig`): everything that defines a measured run.  Light: no torch."""

from __future__ import annotations

from pathlib import Path

import attrs
from attrs import validators as v

from ..plugin.specs import DEVICE, DTYPES
from ..report.results import case_label


def _positive_or_none(instance, attribute, value):
    if value is not None and value < 1:
        raise ValueError(f"{attribute.name} must be >= 1, got {value}")


def default_warmup(optimizations) -> int:
    """Warm-up generations where none is given: 2 for a compiled or graphed stack (the second meets the
    recompile a first call leaves, so that it is not timed), else 1."""
    return 2 if {"compile", "cuda-graph"} & set(optimizations) else 1


@attrs.frozen(kw_only=True)
class RunConfig:
    """Everything that defines one measured case.

    ``options``: the values of the options the run's workload, decoder and optimizations declare
    (``top_p``, ``exit_layer``, ``image_tokenizer`` ...), by name, already parsed and checked; an
    option not given is absent (its owner uses its default).
    """

    workload: str
    preset: str | None = None
    checkpoint: str | None = None
    data: str | None = None
    decoder: str | None = None
    optimizations: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    batch_size: int = attrs.field(default=1, validator=v.ge(1))
    samples: int = attrs.field(default=4, validator=v.ge(1))
    max_new_tokens: int | None = attrs.field(default=None, validator=_positive_or_none)
    seq_len: int | None = attrs.field(default=None, validator=_positive_or_none)
    device: str = attrs.field(default="cpu", validator=v.matches_re(DEVICE))
    dtype: str = attrs.field(default="float32", validator=v.in_(DTYPES))
    seed: int = 0
    warmup: int = attrs.field(default=1, validator=v.ge(0))
    repeat: int = attrs.field(default=1, validator=v.ge(1))  # the timed batches run this many times (spread)
    cache_len: int | None = attrs.field(default=None, validator=_positive_or_none)
    out_dir: str | None = None  # where the workload writes what it makes (images, audio)
    tp: int = attrs.field(default=1, validator=v.ge(1))  # tensor-parallel ranks (:mod:`genaccel.distributed`)
    # which round of its bench case's alternation (``rounds = N``) it ran in; None: a case without rounds
    round: int | None = attrs.field(default=None, validator=v.optional(v.ge(0)))
    options: dict = attrs.field(factory=dict, converter=dict, hash=False)

    @property
    def label(self) -> str:
        return case_label(self.optimizations, decoder=self.decoder, tp=self.tp, round=self.round)

    def to_dict(self) -> dict:
        d = attrs.asdict(self)
        d["options"] = {k: str(x) if isinstance(x, Path) else x for k, x in self.options.items()}
        return d
