"""--tp 2 decodes the greedy tokens of --tp 1 (Gloo, a left-padded batch of 3, from a checkpoint folder
whose slices each rank reads alone): Qwen2 (q/k/v biases, sliding windows on some layers) and Phi-3
(fused qkv_proj and gate_up_proj split block by block, each rank's attention reading its own head
count from a view of the config; compiled).  Each launch starts processes that import torch: the
cases are few."""

import json
import os
import subprocess
import sys

import pytest


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """The environment of a genaccel process that finds hf/t-t as an installed plugin: an entry point
    declared by a distribution's metadata on its path (nothing is installed)."""
    root = tmp_path_factory.mktemp("entry-point")
    info = root / "genaccel_hf_tests-0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: genaccel-hf-tests\nVersion: 0.0\n")
    (info / "entry_points.txt").write_text("[genaccel]\nhf = genaccel_hf\n")
    paths = [str(root), *(p for p in sys.path if p)]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


@pytest.mark.parametrize("arch,steps", [("qwen2", "static-kv"), ("phi3", "static-kv,compile")])
def test_tp2_decodes_the_tokens_of_tp1(env, folder, prompts, tmp_path, arch, steps):
    r = subprocess.run([sys.executable, "-m", "genaccel.cli", "ablate", "hf/t-t", "--checkpoint", str(folder(arch)),
                        "--data", str(prompts), "--samples", "3", "--batch-size", "3", "--max-new-tokens", "6",
                        "--steps", steps, "--no-reference", "--tp", "1,2", "--out", str(tmp_path)],
                       capture_output=True, text=True, env=env, timeout=1200)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    one, two = (json.loads((tmp_path / f"tp{n}" / "report.json").read_text())["cases"] for n in (1, 2))
    assert len(one) == len(two) == len(steps.split(",")) + 1
    for a, b in zip(one, two):
        assert a["status"] == b["status"] == "ok", (a.get("error"), b.get("error"))
        assert [s["output_ids"] for s in a["samples"]] == [s["output_ids"] for s in b["samples"]], a["label"]
        assert b["summary"]["tp"] == 2 and all(s["output_ids"] for s in b["samples"])
        assert 0 < b["summary"]["checkpoint_bytes_read"] < a["summary"]["model_bytes"]  # a rank reads its shard
