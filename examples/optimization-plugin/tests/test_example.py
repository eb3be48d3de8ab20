"""The example optimization plugin is found through its entry point and applied to a workload."""

import json

import torch
from genaccel.testing import RunConfig, check_token_accuracy, installed, prepared


def test_discovered_through_the_entry_point():
    spec = installed().optimization("bf16-weights")
    assert spec.plugin == "bf16" and spec.stage == "weights" and not spec.lossless


def test_applied_to_a_workload():
    ctx = prepared(installed(), RunConfig(workload="llama/t-t", preset="tiny", optimizations=("bf16-weights",)))
    assert {p.dtype for p in ctx.instance.module.parameters()} == {torch.bfloat16}
    assert "bfloat16" in ctx.notes["bf16-weights"]


def test_run_reports_its_accuracy_impact(tmp_path, capsys):
    from genaccel.cli import main

    assert main(["run", "llama/t-t", "--preset", "tiny", "--samples", "2", "--max-new-tokens", "8",
                 "--opt", "bf16-weights,static-kv", "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "report.json").read_text())
    assert doc["optimizations"] == ["bf16-weights", "static-kv"] and doc["lossless"] is False
    acc = check_token_accuracy(doc)
    assert acc["mean_kl"] > 0  # bf16 changes the distributions a little
