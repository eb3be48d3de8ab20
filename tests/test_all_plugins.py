"""The whole system with every installed plugin: each workload runs through the CLI."""

import json
from importlib import metadata

import pytest
from genaccel.cli import main
from genaccel.plugins import default_registry

WORKLOADS = sorted(default_registry().workloads)


def test_every_installed_plugin_registers_workloads():
    dists = {ep.value.split(".")[0] for ep in metadata.entry_points(group="genaccel")}
    providers = {w.plugin for w in default_registry().workloads.values()}
    assert providers == {ep.name for ep in metadata.entry_points(group="genaccel")}, (dists, providers)


@pytest.mark.parametrize("workload", WORKLOADS)
def test_workload_runs_on_its_tiny_preset(workload, tmp_path):
    spec = default_registry().workload(workload)
    preset = "tiny" if "tiny" in spec.presets else spec.default_preset
    out = tmp_path / "run"
    assert main(["run", workload, "--preset", preset, "--samples", "1", "--max-new-tokens", "4",
                 "--opt", "sdpa,static-kv", "--out", str(out)]) == 0
    doc = json.loads((out / "report.json").read_text())
    assert doc["workload"] == workload and doc["samples"]
