"""Typed results: what a decoder returns for a batch, a measured sample, a case and a report.

``report.json`` is the JSON form of :class:`ReportDoc`, version :data:`SCHEMA_VERSION`, whose
every field is documented in ``report-v2.schema.json`` next to this module.  ``to_dict`` methods
are the one serializer; :func:`load_doc` is the one loader (older versions go through
:func:`upgrade`).  :func:`case_label` is the one place a case's label is made.

Throughput is counted in the workload's unit of work (``WorkloadSpec.unit``: token, item,
image, frame): a sample's ``units`` are what its decoder said, else its output tokens for
unit "token", else 1.
"""

from __future__ import annotations

import json
from importlib import resources

import attrs

from ..errors import GenaccelError
from ..plugin.specs import REFERENCE_DECODERS

SCHEMA_VERSION = 2
STATUSES = ("ok", "failed", "oom", "skipped")
KINDS = ("run", "ablate", "bench")


def workload_unit(spec) -> str:
    """The workload's unit of work (a case whose workload is not installed counts tokens)."""
    return spec.unit if spec is not None else "token"


def plural(unit: str) -> str:
    return unit + "s"


def case_label(optimizations, *, decoder: str | None = None, skipped=(), tp: int = 1, round: int | None = None) -> str:
    """A case's name in tables: its stack (stage order when resolved) or "baseline", "transformers
    generate" for the hf-generate reference, `` tpN`` when it ran as N tensor-parallel ranks, `` round
    R`` (from 1) when its bench case alternates its runs in rounds, and what was asked for but skipped."""
    label = REFERENCE_DECODERS.get(decoder) or "+".join(optimizations) or "baseline"
    if tp > 1:
        label += f" tp{tp}"
    if round is not None:
        label += f" round {round + 1}"
    names = [s if isinstance(s, str) else s.name for s in skipped]
    if names and decoder not in REFERENCE_DECODERS:
        label += " (skipped " + ",".join(names) + ")"
    return label


def sample_units(record: dict, unit: str) -> float:
    """Units of work of one sample: the decoder's ``units``, else output tokens (unit "token"), else 1."""
    if record.get("units") is not None:
        return record["units"]
    return (record.get("output_tokens") or 0) if unit == "token" else 1


# --- records --------------------------------------------------------------------------------------


def _drop_none(d: dict, *keys: str) -> dict:
    for k in keys:
        if d.get(k) is None:
            d.pop(k, None)
    return d


@attrs.define(kw_only=True)
class SampleRecord:
    """One measured sample.  ``extra`` holds the workload's own fields (``files``,
    ``input_history``, ``embedding_s`` ...), written flat beside the common ones."""

    id: str
    latency_s: float
    units: float = 1
    input_tokens: int | None = None
    output_tokens: int | None = None
    ttft_s: float | None = None
    tpot_s: float | None = None
    batch: int = 0
    repeat: int = 0  # which repetition of the case's timed batches (``--repeat``) it ran in
    step_ms: list[float] | None = None  # its batch's decode (or denoising) steps, milliseconds, in order
    output_ids: list | None = None
    phases: dict[str, float] | None = None
    extra: dict = attrs.field(factory=dict)

    @classmethod
    def from_decoder(cls, record: dict, *, unit: str, batch: int, output=None, repeat: int = 0,
                     step_s=()) -> SampleRecord:
        """A decoder's record dict (see :class:`BatchResult`) with its batch index, repetition, output ids
        and its batch's step times (kept compactly: milliseconds to 3 significant decimals)."""
        step_ms = [round(t * 1e3, 3) for t in step_s] or None
        return cls.from_dict({**record, "units": sample_units(record, unit), "batch": batch, "repeat": repeat,
                              "output_ids": output, "step_ms": step_ms})

    @classmethod
    def from_dict(cls, d: dict) -> SampleRecord:
        known = {f.name for f in attrs.fields(cls)} - {"extra"}
        return cls(**{k: v for k, v in d.items() if k in known}, extra={k: v for k, v in d.items() if k not in known})

    def to_dict(self) -> dict:
        d = attrs.asdict(self, recurse=False)
        extra = d.pop("extra")
        return {**_drop_none(d, "phases", "step_ms"), **extra}


@attrs.define(kw_only=True)
class CaseResult:
    """One measured case (a workload, a stack, a batch size ...), or one that did not run:
    status failed, oom or skipped, with ``error`` saying why."""

    label: str
    status: str = attrs.field(default="ok", validator=attrs.validators.in_(STATUSES))
    error: str | None = None
    workload: str
    unit: str = "token"
    preset: str | None = None
    checkpoint: str | None = None
    decoder: str | None = None
    optimizations: list[str] = attrs.field(factory=list, converter=list)
    skipped_optimizations: list[dict] = attrs.field(factory=list, converter=list)
    optimization_notes: dict = attrs.field(factory=dict)
    lossless: bool | None = None
    device: str | None = None
    dtype: str | None = None
    batch_size: int | None = None
    seq_len: int | None = None
    max_seq_len: int | None = None
    model: dict | None = None
    config: dict | None = None
    build_s: float | None = None
    apply_s: float | None = None  # applying the stack (autoquant's calibration and timing included)
    warmup_s: list[float] = attrs.field(factory=list)
    samples: list[SampleRecord] = attrs.field(factory=list)
    summary: dict = attrs.field(factory=dict)
    accuracy: dict | None = None
    speculative: dict | None = None
    round: int | None = None  # the round of its bench case's alternation (``rounds = N``), from 0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def not_run(cls, config, status: str, error: str, *, unit: str = "token") -> CaseResult:
        """A case from its ``RunConfig`` that failed or was skipped before any measurement."""
        return cls(
            label=case_label(config.optimizations, decoder=config.decoder, tp=config.tp, round=config.round),
            status=status, error=error, round=config.round,
            workload=config.workload, unit=unit, preset=config.preset, checkpoint=config.checkpoint,
            decoder=config.decoder, optimizations=list(config.optimizations), device=config.device,
            dtype=config.dtype, batch_size=config.batch_size, seq_len=config.seq_len, config=config.to_dict(),
        )

    @classmethod
    def from_dict(cls, d: dict) -> CaseResult:
        fields = {f.name for f in attrs.fields(cls)}
        d = {k: v for k, v in d.items() if k in fields}
        d["samples"] = [SampleRecord.from_dict(s) for s in d.get("samples") or []]
        return cls(**d)

    def to_dict(self) -> dict:
        d = attrs.asdict(self, recurse=False)
        d["samples"] = [s.to_dict() for s in self.samples]
        return _drop_none(d, "accuracy", "speculative", "round")


@attrs.define(kw_only=True)
class ReportDoc:
    """A report: a run (one case, written flat beside the header, as version 1 did) or an
    ablation or bench (``cases``, the report's own ``config``, and ``profiles`` when profiled)."""

    kind: str = attrs.field(validator=attrs.validators.in_(KINDS))
    environment: dict = attrs.field(factory=dict)
    config: dict | None = None
    cases: list[CaseResult] = attrs.field(factory=list)
    profiles: list[dict] | None = None
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict:
        head = {"schema_version": self.schema_version, "kind": self.kind, "environment": self.environment}
        if self.kind == "run":
            (case,) = self.cases
            return {**head, **case.to_dict()}
        return _drop_none({**head, "config": self.config, "cases": [c.to_dict() for c in self.cases],
                           "profiles": self.profiles}, "profiles")


def note_inputs(environment: dict, case: dict) -> None:
    """Record in a report's ``environment`` where a case's workload took its inputs from (its
    ``describe()``'s ``inputs``: e.g. spoken or synthetic speech), by workload."""
    source = (case.get("model") or {}).get("inputs")
    if source:
        environment.setdefault("inputs", {})[case["workload"]] = source


def load_doc(doc: dict) -> ReportDoc:
    """The loader: a report's JSON (any supported version) as a :class:`ReportDoc`."""
    doc = upgrade(doc)
    if doc["kind"] == "run":
        return ReportDoc(kind="run", environment=doc.get("environment") or {}, cases=[CaseResult.from_dict(doc)])
    return ReportDoc(kind=doc["kind"], environment=doc.get("environment") or {}, config=doc.get("config"),
                     cases=[CaseResult.from_dict(c) for c in doc["cases"]], profiles=doc.get("profiles"))


def upgrade(doc: dict) -> dict:
    """A report's JSON at version 2; version 1 (tokens everywhere) is converted, version 2 returned as is."""
    version = doc.get("schema_version")
    if version == SCHEMA_VERSION:
        return doc
    if version != 1:
        raise GenaccelError(f"schema_version {version!r}, expected 1 or {SCHEMA_VERSION}")
    doc = json.loads(json.dumps(doc))  # never change the caller's
    doc["schema_version"] = SCHEMA_VERSION
    for case in doc["cases"] if "cases" in doc else [doc]:
        _upgrade_case_v1(case)
    return doc


def _upgrade_case_v1(case: dict) -> None:
    """Version 1 measured every workload in tokens; its not-run rows used "-" and 0 for unknowns."""
    case["unit"] = "token"
    case.setdefault("error", None)
    case.setdefault("optimizations", [])
    for key in ("device", "dtype"):
        if case.get(key) == "-":
            case[key] = None
    if case.get("batch_size") == 0:
        case["batch_size"] = None
    for s in case.get("samples") or []:
        s.setdefault("units", s.get("output_tokens") or 0)
    summary = case.get("summary") or {}
    if summary:
        summary.update(unit="token", units=summary.get("output_tokens"), throughput_per_s=summary.get("output_tokens_per_s"))
    case["summary"] = summary


def schema() -> dict:
    """The JSON Schema of report.json version 2."""
    return json.loads(resources.files("genaccel.report").joinpath("report-v2.schema.json").read_text())
