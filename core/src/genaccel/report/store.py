"""Report documents on disk: written atomically (after every case of a growing report) and read back,
of any supported schema version (:func:`genaccel.report.results.upgrade`)."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import GenaccelError
from ..files import read_json_object
from ..files import write_json as write_atomically
from .results import SCHEMA_VERSION, CaseResult, note_inputs, upgrade


def write_json(path: Path, doc: dict) -> None:
    """Write atomically, so an interrupted run never leaves a half-written report."""
    write_atomically(path, json.loads(json.dumps(doc, default=_jsonable)))


def _jsonable(obj):
    """Typed results through their serializer; anything else (paths ...) as text."""
    return obj.to_dict() if isinstance(obj, CaseResult) else str(obj)


def load(path: Path) -> dict:
    doc = read_json_object(Path(path), "report")
    try:
        doc = upgrade(doc)
    except GenaccelError as e:
        raise GenaccelError(f"report {str(path)!r} has {e}") from None
    cases = doc.get("cases", [doc] if "workload" in doc else None)
    if not isinstance(cases, list) or not all(isinstance(c, dict) and "workload" in c for c in cases):
        raise GenaccelError(f"report {str(path)!r} has no cases: give a report.json written by genaccel run, ablate "
                            "or bench")
    return doc


def cases_of(doc: dict) -> list[dict]:
    return doc["cases"] if "cases" in doc else [doc]


class Report:
    """A multi-case report (ablate, bench) kept on disk as it grows."""

    def __init__(self, out_dir: Path, kind: str, environment: dict, config: dict, cases=()):
        self.dir = Path(out_dir)
        self.doc = {"schema_version": SCHEMA_VERSION, "kind": kind, "environment": environment, "config": config,
                    "cases": list(cases)}
        for c in self.doc["cases"]:
            note_inputs(environment, c)
        self.save()

    def add(self, case: CaseResult) -> None:
        self.doc["cases"].append(case.to_dict())
        note_inputs(self.doc["environment"], self.doc["cases"][-1])
        self.save()

    def save(self) -> None:
        write_json(self.dir / "report.json", self.doc)
