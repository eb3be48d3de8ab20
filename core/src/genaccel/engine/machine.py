"""The machine a case runs on: its name, its memory bandwidth (MBU's reference, cached, and short
probes around each case), its GEMM peak, and whether other processes competed for its cores."""

from __future__ import annotations

import functools
import os
import platform
import time
from pathlib import Path

import torch

from ..files import cache_dir, read_json_cache, warn, write_json
from .clock import is_cuda, synced_now


def device_name(device: str) -> str:
    if is_cuda(device):
        return torch.cuda.get_device_name(torch.device(device))
    name, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    extensions = [label for flag, label in CPU_EXTENSIONS if flag in flags]
    return f"{name} ({torch.get_num_threads()} threads{'; ' if extensions else ''}{', '.join(extensions)})"


#: the vector extensions a CPU's name is given with (/proc/cpuinfo's flag, its name): what decides which of
#: genaccel's, torch's and llama.cpp's kernels run
CPU_EXTENSIONS = (("avx2", "AVX2"), ("avx512f", "AVX-512"), ("avx512_bf16", "AVX-512 BF16"),
                  ("avx512_vnni", "AVX-512 VNNI"), ("amx_bf16", "AMX-BF16"), ("amx_int8", "AMX-INT8"))


_bandwidth_probe: dict[str, float] = {}  # device name -> this process's own measurement


def measure_bandwidth(device: str, *, nbytes: int = 1 << 30, repeats: int = 10) -> float:
    """Reference memory bandwidth in bytes/s, the denominator of MBU: the best full reduction
    (sum, max) over a large tensor or copy (bytes read plus written) ever measured on this device.

    The figure is cached in ``cache_dir()/bandwidth.json``; the first call in each process
    measures again (fewer repeats once a figure is cached) and keeps the higher of the two.  A
    shared machine's bandwidth moves with its other tenants: a reference taken in a busy moment
    would overstate MBU for every later run, so the reference only ever rises.  This process's
    own figure is :func:`bandwidth_probe`.
    """
    name = device_name(device)
    path = cache_dir() / "bandwidth.json"
    key = f"{name} [sum|max|copy]"
    table = read_json_cache(path, "memory bandwidth")
    cached = _cached_figure(table, key, path)
    if name not in _bandwidth_probe:
        _bandwidth_probe[name] = _stream_bandwidth(device, nbytes, repeats if cached is None else 3)
    best = max(cached or 0.0, _bandwidth_probe[name])
    if cached is None or best > cached:
        table[key] = best
        write_json(path, table)
    return best


def bandwidth_probe(device: str) -> float | None:
    """The bandwidth this process measured (see :func:`measure_bandwidth`), or None if it did not."""
    return _bandwidth_probe.get(device_name(device))


def _stream_bandwidth(device: str, nbytes: int, repeats: int) -> float:
    x = torch.ones(nbytes // 4, dtype=torch.float32, device=device)
    y = torch.empty_like(x)
    best = 0.0
    for moved, fn in ((nbytes, x.sum), (nbytes, x.max), (2 * nbytes, functools.partial(y.copy_, x))):
        for _ in range(repeats):
            t0 = synced_now(device)
            fn()
            best = max(best, moved / (synced_now(device) - t0))
    return best


def measure_gemm_peak(device: str, dtype: torch.dtype = torch.float32, *, n: int = 2048, repeats: int = 5) -> float:
    """Peak matmul throughput in FLOP/s: best of several n×n products, cached per device and dtype."""
    path = cache_dir() / "gemm.json"
    key = f"{device_name(device)} {dtype}"
    table = read_json_cache(path, "GEMM peak")
    cached = _cached_figure(table, key, path)
    if cached is not None:
        return cached
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    best = float("inf")
    for _ in range(repeats + 1):
        t0 = synced_now(device)
        a @ b
        best = min(best, synced_now(device) - t0)
    table[key] = 2 * n**3 / best
    write_json(path, table)
    return table[key]


def _cached_figure(table: dict, key: str, path: Path) -> float | None:
    """A positive number cached under ``key``, else None (a bad entry is reported and measured again)."""
    if key not in table:
        return None
    value = table[key]
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 and value != float("inf"):
        return float(value)
    warn(f"the cached figure {key!r} in {str(path)!r} is {value!r}, not a positive number; measuring it again")
    del table[key]
    return None


# --- the conditions a case ran in -------------------------------------------------------------

PROBES_APART = 1.3  # probes before and after a case further apart than this ratio: the machine changed under it
LOAD_MARGIN = 0.5  # cores of other processes' use tolerated beyond the cores a case leaves free


def probe_bandwidth(device: str, *, nbytes: int | None = None, budget_s: float = 0.15) -> float:
    """A short read-bandwidth probe, taken right before and after a case: the best full sum over a
    tensor (256 MiB on CPU, 1 GiB on CUDA; at least 3 sums, then more within ``budget_s``)."""
    nbytes = nbytes or (1 << 30 if is_cuda(device) else 256 << 20)
    x = torch.ones(nbytes // 4, dtype=torch.float32, device=device)
    best, n, end = 0.0, 0, time.perf_counter() + budget_s
    while n < 3 or (time.perf_counter() < end and n < 50):
        t0 = synced_now(device)
        x.sum()
        best = max(best, nbytes / (synced_now(device) - t0))
        n += 1
    del x
    return best


def _machine_cpu() -> tuple[float, int] | None:
    """Seconds of CPU time every process of the machine has used (idle and iowait excluded) and the
    number of CPUs, from /proc/stat; None where there is none."""
    try:
        with open("/proc/stat") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    fields = [int(v) for v in lines[0].split()[1:]]
    busy = sum(fields[:8]) - fields[3] - (fields[4] if len(fields) > 4 else 0)  # user..steal minus idle, iowait
    cpus = sum(1 for line in lines[1:] if line.startswith("cpu") and line[3:4].isdigit())
    return busy / os.sysconf("SC_CLK_TCK"), cpus


def _own_cpu(pids: tuple[int, ...] = ()) -> float:
    """CPU seconds of this process and its waited-for children (compile workers), plus those of
    ``pids`` (the other ranks of a tensor-parallel group on this machine)."""
    t = os.times()
    total = t.user + t.system + t.children_user + t.children_system
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total


def _load() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


class Contention:
    """Whether other processes competed for a block's cores: their CPU use over the block (the
    machine's, from /proc/stat, minus this process's) against the cores the block leaves free, the
    1-minute load average before and after, and the bandwidth probes taken around it."""

    def __init__(self, threads: int | None = None, pids: tuple[int, ...] = ()):
        self.threads = threads or torch.get_num_threads()
        self.pids = pids
        self.result: dict = {}

    def __enter__(self):
        self._t0, self._machine0, self._own0, self._load0 = time.perf_counter(), _machine_cpu(), _own_cpu(self.pids), _load()
        return self

    def __exit__(self, *exc):
        wall = time.perf_counter() - self._t0
        machine, own, load = _machine_cpu(), _own_cpu(self.pids), _load()
        cores = (machine or (0, 0))[1] or os.cpu_count() or 1
        other = None
        if machine and self._machine0 and wall > 0:
            other = max(0.0, (machine[0] - self._machine0[0]) - (own - self._own0)) / wall
        self.result = {"cores": cores, "threads": self.threads, "other_cores": other,
                       "load_before": self._load0, "load_after": load}
        return False

    def judge(self, probes: tuple[float | None, float | None] = (None, None)) -> dict:
        """The record: the figures, ``reasons`` (empty when the block ran alone) and ``contended``."""
        r, reasons = dict(self.result), []
        free = r["cores"] - min(r["threads"], r["cores"])
        if r["other_cores"] is not None and r["other_cores"] > free + LOAD_MARGIN:
            reasons.append(f"other processes used {r['other_cores']:.1f} cores while it ran, "
                           f"{r['cores']} cores less its {r['threads']} threads leave {free}")
        loads = [x for x in (r["load_before"], r["load_after"]) if x is not None]
        if loads and max(loads) > r["cores"] + LOAD_MARGIN:
            reasons.append(f"load average {max(loads):.1f} above the machine's {r['cores']} cores")
        before, after = probes
        if before and after and max(before, after) / min(before, after) > PROBES_APART:
            reasons.append(f"bandwidth probes far apart: {before / 1e9:.1f} GB/s before, {after / 1e9:.1f} after")
        return {**r, "probe_before_bytes_per_s": before, "probe_after_bytes_per_s": after, "reasons": reasons,
                "contended": bool(reasons)}


def mbu_bandwidth(reference: float | None, probes: tuple[float | None, float | None]) -> dict:
    """MBU's denominator: the highest of the reference and the case's own probes, and which it was."""
    named = [("reference", reference), ("probe before", probes[0]), ("probe after", probes[1])]
    source, value = max(((n, v) for n, v in named if v), key=lambda nv: nv[1], default=(None, None))
    return {"bytes_per_s": value, "source": source, "reference_bytes_per_s": reference,
            "probe_before_bytes_per_s": probes[0], "probe_after_bytes_per_s": probes[1]}
