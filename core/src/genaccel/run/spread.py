"""A bench spread over devices: ``genaccel bench bench.toml --devices cuda:0,cuda:1`` (``cpu,cpu`` too).

Independent cases run in parallel, each in its own worker process pinned to one device of the
list (``python -m genaccel.run.spread CONFIG RESULT``); a device takes the next case when its worker
ends.  A worker writes its case to a file (not a queue: nothing waits on a pipe that a dead process
would never fill); the bench reads it when the worker exits and adds it to the one report, written
as cases finish.  A worker that dies or outlives ``$GENACCEL_CASE_TIMEOUT`` seconds (when set) is
recorded as a failed case with the reason, and the bench goes on.  CPU workers share the cores:
each gets ``cores / CPU workers`` threads.  Scheduling over several nodes is left to torchrun (see
the README); nothing here crosses a node.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import attrs

from ..distributed import group
from ..errors import GenaccelError
from ..plugin.manager import default_registry
from ..report.results import CaseResult
from ..report.store import write_json
from .case import run_case_safe
from .config import RunConfig
from .resolve import ResolvedRun, check_device, resolve


@attrs.define
class _Worker:
    """A case running in its own process on ``taken`` devices."""

    index: int
    run: ResolvedRun
    where: str
    taken: list
    result: Path
    proc: subprocess.Popen
    started: float = attrs.field(factory=time.monotonic)
    timed_out: float | None = None  # the limit it ran past, when it was stopped


def _reason(code: int, device: str) -> str:
    if code < 0:
        return f"the worker on {device} was killed by {signal.Signals(-code).name} before writing its result"
    return f"the worker on {device} exited with code {code} before writing its result"


def rank_devices(device: str, tp: int) -> tuple[str, ...]:
    """The devices of a tensor-parallel case run alone: cuda:0..tp-1 on CUDA, the CPU ``tp`` times."""
    return tuple(f"cuda:{r}" for r in range(tp)) if device.startswith("cuda") else (device,) * tp


def run_spread(runs: list[ResolvedRun], report, devices: tuple[str, ...], *, done=frozenset(), key=None) -> None:
    """Run ``runs`` (resolved, already given their output folders) over ``devices``; add each case to
    ``report`` as it finishes, then order the new cases as ``runs``."""
    for device in dict.fromkeys(devices):
        check_device(device)
    pending = [(i, r) for i, r in enumerate(runs) if key is None or key(r.config.to_dict()) not in done]
    for _, r in pending:
        if r.config.tp > len(devices):
            raise GenaccelError(f"case {r.config.workload} {r.config.label} has tp = {r.config.tp} ranks but --devices "
                                f"gives {len(devices)} devices ({','.join(devices)})")
    work = report.dir / ".workers"
    work.mkdir(parents=True, exist_ok=True)
    cpu_workers = sum(1 for d in devices if d == "cpu")
    threads = str(max(1, (os.cpu_count() or 1) // max(cpu_workers, 1)))
    free, running, added = list(devices), [], []  # added: the run index of each case added
    first = len(report.doc["cases"])
    try:
        while pending or running:
            while pending and len(free) >= pending[0][1].config.tp:  # a tensor-parallel case takes tp devices
                i, run = pending.pop(0)
                taken, free = free[: run.config.tp], free[run.config.tp:]
                running.append(_start(i, run, taken, work, threads, len(runs)))
            time.sleep(0.2)
            for w in [w for w in running if _finished(w)]:
                running.remove(w)
                free += w.taken
                report.add(_result(w))
                added.append(w.index)
    finally:
        for w in running:
            _kill(w.proc)
    new = report.doc["cases"][first:]
    report.doc["cases"][first:] = [c for _, c in sorted(zip(added, new), key=lambda p: p[0])]
    report.save()
    for path in work.iterdir():
        path.unlink()
    work.rmdir()


def _start(i: int, run: ResolvedRun, taken: list, work: Path, threads: str, total: int) -> _Worker:
    """A worker process for run ``i`` on the devices ``taken``."""
    env = dict(os.environ, GENACCEL_CASE_INDEX=str(i))
    config = run.config
    if config.tp > 1 and taken[0].startswith("cuda"):  # rank r on the r-th of the devices taken
        env["CUDA_VISIBLE_DEVICES"] = ",".join(d.partition(":")[2] or "0" for d in taken)
        config = attrs.evolve(config, device="cuda")
    else:
        config = attrs.evolve(config, device=taken[0])
    if taken[0] == "cpu":
        env["OMP_NUM_THREADS"] = threads
    cfg_path, result = work / f"case-{i:03d}.json", work / f"result-{i:03d}.json"
    result.unlink(missing_ok=True)
    cfg_path.write_text(json.dumps(config.to_dict(), default=str))
    where = ",".join(taken)
    print(f"[{i + 1}/{total}] {config.workload} bs{config.batch_size} {config.label} on {where}", file=sys.stderr,
          flush=True)
    proc = subprocess.Popen([sys.executable, "-m", "genaccel.run.spread", str(cfg_path), str(result)], env=env,
                            start_new_session=True)
    return _Worker(index=i, run=attrs.evolve(run, config=config), where=where, taken=taken, result=result, proc=proc)


def _finished(w: _Worker) -> bool:
    """Whether ``w`` has ended; one that outlives ``$GENACCEL_CASE_TIMEOUT`` is stopped first."""
    limit = float(os.environ.get("GENACCEL_CASE_TIMEOUT", "0")) or None
    if w.proc.poll() is None and limit and time.monotonic() - w.started > limit:
        _kill(w.proc)
        w.timed_out = limit
    return w.proc.poll() is not None


def _result(w: _Worker) -> CaseResult:
    """The case a finished worker wrote, or a failed case saying why it wrote none."""
    if w.result.exists():
        return CaseResult.from_dict(json.loads(w.result.read_text()))
    code = w.proc.returncode
    if w.timed_out:
        why = f"the worker on {w.where} ran past GENACCEL_CASE_TIMEOUT={w.timed_out:g} s and was stopped"
    else:
        why = _reason(code, w.where)
    print(f"  {w.run.config.label} on {w.where}: failed: {why}", file=sys.stderr, flush=True)
    return CaseResult.not_run(w.run.config, "failed", why, unit=w.run.workload.unit)


def _kill(proc) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def worker(config_path: str, result_path: str) -> int:
    """One case on its device; its result written to ``result_path`` (atomically)."""
    if os.environ.get("GENACCEL_TEST_KILL_WORKER") == os.environ.get("GENACCEL_CASE_INDEX"):  # tests: a worker dies
        os.kill(os.getpid(), signal.SIGKILL)
    config = RunConfig(**json.loads(Path(config_path).read_text()))
    if config.tp > 1 and not group.is_rank():  # the case's ranks, each running this worker
        return group.launch([config_path, result_path], config.tp, config.device, module="genaccel.run.spread")
    if config.tp > 1:
        config = attrs.evolve(config, device=group.init_rank(config.device))
    case = run_case_safe(resolve(default_registry(), config, strict=False), progress=False)
    if group.rank() == 0:
        write_json(Path(result_path), case.to_dict())
    group.finish()
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python -m genaccel.run.spread CONFIG.json RESULT.json")
    try:
        sys.exit(worker(sys.argv[1], sys.argv[2]))
    except GenaccelError as e:
        print(f"genaccel: error: {e}", file=sys.stderr)
        sys.exit(2)
