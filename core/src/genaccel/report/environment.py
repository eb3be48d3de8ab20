"""The environment block of a report: versions, device, machine and its memory bandwidth."""

from __future__ import annotations

import platform
from importlib import metadata

import torch

from ..engine.machine import bandwidth_probe, device_name

#: third-party distributions whose versions every report records beside torch's and genaccel's
KEY_DISTRIBUTIONS = ("transformers", "diffusers", "torchao")


def environment(device: str, plugin_versions: dict[str, str], bandwidth: float | None = None) -> dict:
    """What ran where: Python, torch and key libraries' versions, the genaccel distributions
    (``plugin_versions``: the registry's), the device, the CPU, threads, and the bandwidth reference
    with this process's own probe."""
    versions = {"python": platform.python_version(), "torch": torch.__version__}
    for dist in KEY_DISTRIBUTIONS:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    versions.update(plugin_versions)
    env = {
        "versions": versions,
        "device": device,
        "device_name": device_name(device),
        "cpu": device_name("cpu"),
        "threads": torch.get_num_threads(),
        "platform": platform.platform(),
    }
    if bandwidth is not None:
        env["memory_bandwidth_bytes_per_s"] = bandwidth  # the reference: the best measured on this device
        env["memory_bandwidth_probe_bytes_per_s"] = bandwidth_probe(device)  # this run's own figure
    return env
