"""A bench's cases (an ablation's too): resolved from a bench TOML before the first case runs, run
one after another (a tensor-parallel case in worker processes), each written to the report as it
finishes; a resumed bench keeps the cases it finished before."""

from __future__ import annotations

import json
import re
import sys

import attrs

from ..distributed.group import is_rank
from ..errors import GenaccelError, OutputError, disk_fault
from ..report.results import CaseResult, case_label
from .bench_config import BenchConfig
from .case import run_case_safe
from .profile import profile_workload
from .progress import Progress
from .resolve import ResolvedRun, resolve
from .spread import rank_devices, run_spread


def case_key(config: dict) -> str:
    """What identifies a case across runs of the same bench: its whole configuration but the output
    folder, with the kind of device only (a worker of ``--devices`` or a tensor-parallel rank runs
    on ``cuda:1`` a case asked for on ``cuda``)."""
    key = {k: v for k, v in config.items() if k != "out_dir"}
    key["device"] = str(key.get("device", "")).partition(":")[0]
    return json.dumps(key, sort_keys=True, default=str)


def bench_runs(bench: BenchConfig, registry) -> tuple[list[ResolvedRun], list[CaseResult]]:
    """Every run of ``bench``, resolved (a role a workload lacks: a recorded skip), and the recorded
    skips of the cases that cannot run here: one per case whose plugin is not installed or whose
    checkpoint is missing, one per run of a case that compares with a reference engine not installed
    (nothing of it runs: its stacks are there for the comparison)."""
    families = {w.split("/")[0] for w in registry.workloads}
    runs, skipped = [], []
    for case in bench.cases:
        if case.workload.split("/")[0] not in families:
            why = f"no installed plugin provides {case.workload.split('/')[0]}/*"
            skipped.append(CaseResult(label="-", status="skipped", error=why, workload=case.workload))
            continue
        spec = registry.workload(case.workload)  # a misspelt task of an installed family is an error
        if case.missing_checkpoint():
            skipped.append(CaseResult(label="-", status="skipped", error=case.missing_checkpoint(),
                                      workload=case.workload))
            continue
        if why := case.missing_engine():
            skipped += [CaseResult.not_run(c, "skipped", why, unit=spec.unit) for c in case.configs()]
            continue
        for c in case.configs():  # every name checked before the first case runs, not when its case is reached
            try:
                runs.append(resolve(registry, c, strict=False))
            except GenaccelError as e:
                raise GenaccelError(f"{bench.path}: case {c.workload} {c.label}: {e}") from None
    return runs, skipped


def add_skipped(report, skipped: list[CaseResult]) -> None:
    for case in skipped:
        report.add(case)
        print(f"skipped {case.workload}{'' if case.label == '-' else ' ' + case.label}: {case.error}", file=sys.stderr)


def twins(runs: list[ResolvedRun]) -> dict[int, int]:
    """Runs that are the same as an earlier one once their skipped optimizations are left out (a
    ``cuda-graph`` stack on a CPU is its neighbour without it), or listed twice by the bench's cases
    (a case's first stack repeating another case's last): index → the earlier run's index."""
    first: dict[str, int] = {}
    same: dict[int, int] = {}
    for i, run in enumerate(runs):
        config = run.config.to_dict()
        config["optimizations"] = list(run.stack.names)
        del config["warmup"]  # chosen from the stack asked for (a skipped cuda-graph warms up twice); not timed
        key = case_key(config)
        if key in first:
            same[i] = first[key]
        first.setdefault(key, i)
    return same


def twin_case(run: ResolvedRun, twin: ResolvedRun) -> CaseResult:
    """The record of a run left out as ``twin``'s repeat: a skipped case that names the steps skipped
    on this device and the case it resolved to."""
    skipped = [{"name": s.name, "reason": s.reason} for s in run.stack.skipped]
    why = f" ({'; '.join(f'{s.name}: {s.reason}' for s in run.stack.skipped)})" if skipped else ""
    case = CaseResult.not_run(run.config, "skipped", f"resolves to the same stack as {twin.config.label} here{why}; "
                              "measured once, there", unit=run.workload.unit)
    return attrs.evolve(case, label=case_label(run.stack.names, decoder=run.config.decoder, tp=run.config.tp,
                                               skipped=run.stack.skipped, round=run.config.round),
                        skipped_optimizations=skipped)


def _describe(config) -> str:
    model = config.preset or config.checkpoint
    return f"{config.workload}{f' {model}' if model else ''} bs{config.batch_size} {config.label}"


def run_cases(runs: list[ResolvedRun], report, *, done=frozenset()) -> None:
    """Run each case into ``report`` (its outputs under the report's ``outputs/``), keeping ``done``
    ones and recording a repeat of an earlier case (:func:`twins`) without running it again; a counter
    and the time left go to stderr."""
    runs = [run.with_config(out_dir=str(report.dir / "outputs" / f"{i:02d}-{_slug(run.config)}"))
            for i, run in enumerate(runs, start=1)]
    same = twins(runs)
    finished = {i for i, run in enumerate(runs) if case_key(run.config.to_dict()) in done}
    progress = Progress([None if i in same or i in finished else r.config.workload for i, r in enumerate(runs)])
    for i, run in enumerate(runs, start=1):
        config = run.config
        if i - 1 in finished:
            progress.note(i, f"{config.workload} bs{config.batch_size} {config.label}: finished before, kept")
        elif i - 1 in same:
            twin = runs[same[i - 1]]
            progress.note(i, f"{_describe(config)}: the same as {twin.config.label} here, not run again")
            report.add(twin_case(run, twin))
        else:
            progress.start(i, _describe(config))
            if config.tp > 1 and not is_rank():  # a tensor-parallel case: its ranks in worker processes
                run_spread([run], report, rank_devices(config.device, config.tp))
            else:
                report.add(run_case_safe(run))
            progress.done(i)


def _slug(config) -> str:
    return re.sub(r"[^a-z0-9.+-]+", "-", f"{config.workload}-bs{config.batch_size}-{config.label}".lower())


def spread_cases(runs: list[ResolvedRun], report, devices, *, done=frozenset()) -> None:
    """Independent cases in parallel, one worker process per device."""
    runs = [r.with_config(out_dir=str(report.dir / "outputs" / f"{i:02d}")) for i, r in enumerate(runs, 1)]
    run_spread(runs, report, devices, done=done, key=case_key)


def bench_profiles(registry, bench: BenchConfig, report) -> None:
    """Profile the bench's chosen cases into the report (``profiles``, rendered with it); a failure is
    recorded and the bench keeps what it has."""
    configs = [c for case in bench.cases if case.workload in registry.workloads for c in case.profile_configs()]
    profiles = []
    for i, config in enumerate(configs, start=1):
        print(f"[profile {i}/{len(configs)}] {config.workload} {config.label}", file=sys.stderr, flush=True)
        try:
            profiles.append(profile_workload(registry, resolve(registry, config, strict=False), strict=False))
        except Exception as e:  # noqa: BLE001 - keep the measured cases whatever happens here
            if isinstance(e, OutputError) or disk_fault(e):  # a full disk: the bench stops with one line
                raise
            print(f"  profile failed: {type(e).__name__}: {e}", file=sys.stderr)
    if profiles:
        report.doc["profiles"] = profiles
        report.save()


__all__ = ["add_skipped", "bench_profiles", "bench_runs", "case_key", "run_cases", "spread_cases", "twin_case", "twins"]
