"""A bench spread over devices: ``genaccel bench bench.toml --devices cuda:0,cuda:1`` (``cpu,cpu`` too).

Independent cases run in parallel, each in its own worker process pinned to one device of the
list (``python -m genaccel.spread CONFIG RESULT``); a device takes the next case when its worker
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

from .errors import GenaccelError


def _reason(code: int, device: str) -> str:
    if code < 0:
        return f"the worker on {device} was killed by {signal.Signals(-code).name} before writing its result"
    return f"the worker on {device} exited with code {code} before writing its result"


def run_spread(registry, configs: list, report, devices: tuple[str, ...], *, done=frozenset(), key=None) -> None:
    """Run ``configs`` (already given their output folders) over ``devices``; add each case to
    ``report`` as it finishes, then order the new cases as ``configs``."""
    from .results import CaseResult, workload_unit
    from .runner import check_device

    for device in dict.fromkeys(devices):
        check_device(device)
    limit = float(os.environ.get("GENACCEL_CASE_TIMEOUT", "0")) or None
    work = report.dir / ".workers"
    work.mkdir(parents=True, exist_ok=True)
    cpu_workers = sum(1 for d in devices if d == "cpu")
    threads = str(max(1, (os.cpu_count() or 1) // max(cpu_workers, 1)))
    pending = [(i, c) for i, c in enumerate(configs) if key is None or key(c.to_dict()) not in done]
    free, running, added = list(devices), {}, []  # added: the config index of each case added
    first = len(report.doc["cases"])
    try:
        while pending or running:
            while pending and free:
                i, config = pending.pop(0)
                device = free.pop(0)
                config = attrs.evolve(config, device=device)
                cfg_path, result = work / f"case-{i:03d}.json", work / f"result-{i:03d}.json"
                result.unlink(missing_ok=True)
                cfg_path.write_text(json.dumps(config.to_dict(), default=str))
                env = dict(os.environ, GENACCEL_CASE_INDEX=str(i))
                if device == "cpu":
                    env["OMP_NUM_THREADS"] = threads
                print(f"[{i + 1}/{len(configs)}] {config.workload} bs{config.batch_size} {config.label} on {device}",
                      file=sys.stderr, flush=True)
                proc = subprocess.Popen([sys.executable, "-m", "genaccel.spread", str(cfg_path), str(result)],
                                        env=env, start_new_session=True)
                running[proc] = (i, config, device, result, time.monotonic())
            time.sleep(0.2)
            for proc in list(running):
                i, config, device, result, t0 = running[proc]
                code = proc.poll()
                if code is None and limit and time.monotonic() - t0 > limit:
                    _kill(proc)
                    code = proc.wait()
                    why = f"the worker on {device} ran past GENACCEL_CASE_TIMEOUT={limit:g} s and was stopped"
                elif code is None:
                    continue
                else:
                    why = _reason(code, device)
                del running[proc]
                free.append(device)
                if result.exists():
                    case = CaseResult.from_dict(json.loads(result.read_text()))
                else:
                    print(f"  {config.label} on {device}: failed: {why}", file=sys.stderr, flush=True)
                    case = CaseResult.not_run(config, "failed", why, unit=workload_unit(registry.workloads.get(config.workload)))
                report.add(case)
                added.append(i)
    finally:
        for proc in running:
            _kill(proc)
    new = report.doc["cases"][first:]
    report.doc["cases"][first:] = [c for _, c in sorted(zip(added, new), key=lambda p: p[0])]
    report.save()
    for path in work.iterdir():
        path.unlink()
    work.rmdir()


def _kill(proc) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def worker(config_path: str, result_path: str) -> int:
    """One case on its device; its result written to ``result_path`` (atomically)."""
    from .config import RunConfig
    from .plugins import default_registry
    from .report import write_json
    from .runner import run_case_safe

    if os.environ.get("GENACCEL_TEST_KILL_WORKER") == os.environ.get("GENACCEL_CASE_INDEX"):  # tests: a worker dies
        os.kill(os.getpid(), signal.SIGKILL)
    data = json.loads(Path(config_path).read_text())
    config = RunConfig(**data)
    case = run_case_safe(default_registry(), config, strict=False, progress=False)
    write_json(Path(result_path), case.to_dict())
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python -m genaccel.spread CONFIG.json RESULT.json")
    try:
        sys.exit(worker(sys.argv[1], sys.argv[2]))
    except GenaccelError as e:
        print(f"genaccel: error: {e}", file=sys.stderr)
        sys.exit(2)
