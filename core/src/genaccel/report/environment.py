"""The environment block of a report, its provenance: when and how it was made (UTC time, the command
line, the git commit of the checkout), what ran it (Python, torch and the libraries genaccel and its
plugins depend on, torch.utils.collect_env's facts: OS, compilers, CUDA, cuDNN, driver), where (the
device, the CPU, threads) and the machine's probes (memory bandwidth, GEMM peak)."""

from __future__ import annotations

import functools
import platform
import re
import shlex
import subprocess
import time
from importlib import metadata
from pathlib import Path

import torch

from ..engine.machine import bandwidth_probe, device_name, measure_gemm_peak

#: third-party distributions whose versions every report records beside torch's and genaccel's
KEY_DISTRIBUTIONS = ("transformers", "diffusers", "torchao", "numpy", "triton")

#: torch.utils.collect_env's facts a report keeps (its pip and conda lists are left out: ``versions`` and
#: ``dependencies`` name what genaccel uses)
COLLECT_ENV_FACTS = ("os", "libc_version", "gcc_version", "clang_version", "cmake_version", "python_platform",
                     "is_cuda_available", "cuda_compiled_version", "cuda_runtime_version", "cudnn_version",
                     "nvidia_driver_version", "nvidia_gpu_models", "hip_compiled_version", "hip_runtime_version",
                     "is_xpu_available")


def environment(device: str, plugin_versions: dict[str, str], bandwidth: float | None = None, *,
                command_line: list[str] | None = None) -> dict:
    """What ran where, when and how: Python, torch and key libraries' versions, the genaccel
    distributions (``plugin_versions``: the registry's) and their own dependencies, torch's view of
    the system, the device, the CPU, threads, the bandwidth reference with this process's own probe,
    the GEMM peak, the time, the command line and the checkout's commit."""
    versions = {"python": platform.python_version(), "torch": torch.__version__}
    versions.update({dist: _version(dist) for dist in KEY_DISTRIBUTIONS})
    versions.update(plugin_versions)
    env = {
        "timestamp_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command_line": shlex.join(command_line) if command_line else None,
        "git": git_checkout(),
        "versions": versions,
        "dependencies": dependencies(plugin_versions),
        "system": system_facts(),
        "device": device,
        "device_name": device_name(device),
        "cpu": device_name("cpu"),
        "threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "gemm_peak_flops_per_s": measure_gemm_peak(device),  # float32, cached per device
    }
    if bandwidth is not None:
        env["memory_bandwidth_bytes_per_s"] = bandwidth  # the reference: the best measured on this device
        env["memory_bandwidth_probe_bytes_per_s"] = bandwidth_probe(device)  # this run's own figure
    return env


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def dependencies(distributions) -> dict[str, str | None]:
    """The versions of what the genaccel ``distributions`` require (extras too: None where not
    installed), by distribution name; genaccel's own distributions are left out (``versions`` has them)."""
    names: set[str] = set()
    for dist in distributions:
        try:
            requires = metadata.requires(dist) or []
        except metadata.PackageNotFoundError:
            continue
        names.update(m.group(0).lower() for r in requires if (m := re.match(r"[A-Za-z0-9._-]+", r)))
    return {name: _version(name) for name in sorted(names) if not name.startswith("genaccel")}


@functools.cache
def system_facts() -> dict:
    """torch.utils.collect_env's facts (OS, compilers, CUDA, cuDNN, driver, GPUs), once per process;
    {} where collecting them fails (a missing tool is its own None)."""
    try:
        from torch.utils import collect_env  # inside the try: a failing import is a failed collection

        info = collect_env.get_env_info()._asdict()
    except Exception:  # noqa: BLE001 - provenance is best effort, never the run's end
        return {}
    return {k: info.get(k) for k in COLLECT_ENV_FACTS if info.get(k) not in (None, "N/A", "")}


@functools.cache
def git_checkout() -> dict | None:
    """The git commit of the checkout genaccel runs from (an editable install), whether it has
    uncommitted changes to tracked files, and its root; None when genaccel is not in a checkout."""
    here = str(Path(__file__).resolve().parent)

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", here, *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None, "root": git("rev-parse", "--show-toplevel")}
