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


def rank_devices(device: str, tp: int) -> tuple[str, ...]:
    """The devices of a tensor-parallel case run alone: cuda:0..tp-1 on CUDA, the CPU ``tp`` times."""
    return tuple(f"cuda:{r}" for r in range(tp)) if device.startswith("cuda") else (device,) * tp


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
    for _, c in pending:
        if c.tp > len(devices):
            raise GenaccelError(f"case {c.workload} {c.label} has tp = {c.tp} ranks but --devices gives {len(devices)} "
                                f"devices ({','.join(devices)})")
    free, running, added = list(devices), {}, []  # added: the config index of each case added
    first = len(report.doc["cases"])
    try:
        while pending or running:
            while pending and len(free) >= pending[0][1].tp:  # a tensor-parallel case takes tp devices
                i, config = pending.pop(0)
                taken, free = free[: config.tp], free[config.tp:]
                device = ",".join(taken)
                env = dict(os.environ, GENACCEL_CASE_INDEX=str(i))
                if config.tp > 1 and taken[0].startswith("cuda"):  # rank r on the r-th of the devices taken
                    env["CUDA_VISIBLE_DEVICES"] = ",".join(d.partition(":")[2] or "0" for d in taken)
                    config = attrs.evolve(config, device="cuda")
                else:
                    config = attrs.evolve(config, device=taken[0])
                cfg_path, result = work / f"case-{i:03d}.json", work / f"result-{i:03d}.json"
                result.unlink(missing_ok=True)
                cfg_path.write_text(json.dumps(config.to_dict(), default=str))
                if taken[0] == "cpu":
                    env["OMP_NUM_THREADS"] = threads
                print(f"[{i + 1}/{len(configs)}] {config.workload} bs{config.batch_size} {config.label} on {device}",
                      file=sys.stderr, flush=True)
                proc = subprocess.Popen([sys.executable, "-m", "genaccel.spread", str(cfg_path), str(result)],
                                        env=env, start_new_session=True)
                running[proc] = (i, config, device, result, time.monotonic(), taken)
            time.sleep(0.2)
            for proc in list(running):
                i, config, device, result, t0, taken = running[proc]
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
                free += taken
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
    from . import distributed
    from .config import RunConfig
    from .plugins import default_registry
    from .report import write_json
    from .runner import run_case_safe

    if os.environ.get("GENACCEL_TEST_KILL_WORKER") == os.environ.get("GENACCEL_CASE_INDEX"):  # tests: a worker dies
        os.kill(os.getpid(), signal.SIGKILL)
    data = json.loads(Path(config_path).read_text())
    config = RunConfig(**data)
    if config.tp > 1 and not distributed.is_rank():  # the case's ranks, each running this worker
        return distributed.launch([config_path, result_path], config.tp, config.device, module="genaccel.spread")
    if config.tp > 1:
        config = attrs.evolve(config, device=distributed.init_rank(config.device))
    case = run_case_safe(default_registry(), config, strict=False, progress=False)
    if distributed.rank() == 0:
        write_json(Path(result_path), case.to_dict())
    distributed.finish()
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python -m genaccel.spread CONFIG.json RESULT.json")
    try:
        sys.exit(worker(sys.argv[1], sys.argv[2]))
    except GenaccelError as e:
        print(f"genaccel: error: {e}", file=sys.stderr)
        sys.exit(2)
