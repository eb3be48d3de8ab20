"""Tensor parallelism on CPU (Gloo): --tp 2 decodes the same greedy tokens as --tp 1 (eager and
compiled, a left-padded batch of 3, from a preset and from a checkpoint), each rank holds and reads
its shard only, and bad input (a --tp that does not divide the heads, more ranks than devices, a
rank that dies) ends with one line and no process left behind.  Each launch starts processes that
import torch: the cases are few and batched."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytest.importorskip("genaccel_llama")


def genaccel(*args, env=None, timeout=900):
    return subprocess.run([sys.executable, "-m", "genaccel.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)


def cases(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cases"]


def scaling_run(tmp_path, workload, steps, *source):
    r = genaccel("ablate", workload, *(source or ("--preset", "tiny")), "--samples", "3", "--batch-size", "3",
                 "--max-new-tokens", "6", "--steps", steps, "--no-reference", "--tp", "1,2", "--out", str(tmp_path))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    one, two = cases(tmp_path / "tp1" / "report.json"), cases(tmp_path / "tp2" / "report.json")
    assert [c["label"] + " tp2" for c in one] == [c["label"] for c in two] and len(one) == len(steps.split(",")) + 1
    for a, b in zip(one, two):
        assert a["status"] == b["status"] == "ok", (a.get("error"), b.get("error"))
        assert {len(s["output_ids"]) for s in a["samples"]} == {6}
        assert [s["output_ids"] for s in a["samples"]] == [s["output_ids"] for s in b["samples"]], a["label"]
        assert b["summary"]["tp"] == 2 and [r["rank"] for r in b["summary"]["ranks"]] == [0, 1]
        assert "tp" not in a["summary"]
    scaling = json.loads((tmp_path / "scaling.json").read_text())
    assert scaling["sizes"] == [1, 2] and [r["label"] for r in scaling["rows"]] == [c["label"] for c in one for _ in "12"]
    assert "efficiency" in (tmp_path / "scaling.md").read_text()
    return one, two


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """The tiny preset's weights saved as a checkpoint in several files (with an index) and its tokenizer."""
    from genaccel.plugin.manager import default_registry
    from genaccel.testing import RunConfig, prepared
    from genaccel_llama.workload import preset_tokenizer

    path = tmp_path_factory.mktemp("ckpt") / "tiny"
    ctx = prepared(default_registry(), RunConfig(workload="llama/t-t", preset="tiny"), apply=False)
    ctx.instance.module.save_pretrained(path, max_shard_size="200KB")
    preset_tokenizer(512).save_pretrained(path)
    assert len(list(path.glob("*.safetensors"))) > 1 and (path / "model.safetensors.index.json").is_file()
    return path


def test_llama_tp2_from_a_checkpoint_matches_tp1_eager_and_compiled_and_reads_a_shard(tmp_path, checkpoint):
    from genaccel_llama.workload import PRESETS
    from safetensors import safe_open

    one, two = scaling_run(tmp_path, "llama/t-t", "static-kv,compile", "--checkpoint", str(checkpoint))
    p = PRESETS["tiny"]
    # replicated: the norms (two per layer and the final one); the rest, the embedding too, is split in two
    replicated = 4 * (2 * p["num_hidden_layers"] + 1) * p["hidden_size"]
    whole = 0  # the checkpoint's weights
    for file in checkpoint.glob("*.safetensors"):
        with safe_open(str(file), "pt") as f:
            whole += sum(f.get_tensor(k).nbytes for k in f.keys())
    assert one[0]["summary"]["model_bytes"] == whole
    for case in two:
        per_rank = [r["model_bytes"] for r in case["summary"]["ranks"]]
        assert per_rank == [(whole - replicated) // 2 + replicated] * 2
        read = [r["checkpoint_bytes_read"] for r in case["summary"]["ranks"]]  # each rank read its slices only
        assert read == per_rank
        steps = [r["bytes_per_decode_step"] for r in case["summary"]["ranks"]]
        assert steps[0] == steps[1] < case["summary"]["bytes_per_decode_step"] * 1.01


def test_chameleon_tp2_matches_tp1(tmp_path):
    pytest.importorskip("genaccel_chameleon")
    scaling_run(tmp_path, "chameleon/i-t", "static-kv")


def test_tp_that_does_not_divide_the_heads(tmp_path):
    r = genaccel("run", "llama/t-t", "--preset", "tiny", "--samples", "1", "--max-new-tokens", "2", "--tp", "3",
                 "--out", str(tmp_path / "r"))
    assert r.returncode == 2
    assert "--tp 3 does not divide the model's 4 attention heads and 2 KV heads; use --tp 1, 2" in r.stderr
    assert re.fullmatch(r"genaccel: error: rank [012] of 3 exited with code 2; the other ranks were stopped",
                        r.stderr.splitlines()[-1])


def test_a_missing_backend_or_more_ranks_than_devices_and_a_list_outside_ablate(tmp_path):
    import torch

    r = genaccel("run", "llama/t-t", "--preset", "tiny", "--tp", "64", "--device", "cuda", "--out", str(tmp_path))
    expected = ("--tp 64 on cuda needs the nccl backend, which this torch build lacks"
                if not torch.distributed.is_nccl_available() else "--tp 64 needs 64 CUDA devices (one per rank)")
    assert r.returncode == 2 and expected in r.stderr, r.stderr
    r = genaccel("run", "llama/t-t", "--preset", "tiny", "--tp", "1,2", "--out", str(tmp_path))
    assert r.returncode == 2 and "a list of sizes is for ablate" in r.stderr
    (tmp_path / "bench.toml").write_text(BENCH.split("[[cases]]")[0] + TP_CASE)
    r = genaccel("bench", str(tmp_path / "bench.toml"), "--devices", "cpu", "--out", str(tmp_path / "b"))
    assert r.returncode == 2, r.stderr[-2000:]
    assert r.stderr.splitlines()[-1] == ("genaccel: error: case llama/t-t static-kv tp2 has tp = 2 ranks but --devices "
                                         "gives 1 devices (cpu)")


def test_resume_knows_a_case_run_on_any_device_of_its_kind_but_not_at_another_tp():
    import attrs
    from genaccel.run.bench import case_key as _case_key
    from genaccel.run.config import RunConfig
    from genaccel.run.prepare import build_options

    asked = RunConfig(workload="llama/t-t", preset="tiny", device="cuda", tp=2)
    ran = attrs.evolve(asked, device="cuda:1", out_dir="out/outputs/01")  # as a worker of --devices records it
    assert _case_key(ran.to_dict()) == _case_key(asked.to_dict())
    for other in (attrs.evolve(asked, tp=1), attrs.evolve(asked, device="cpu")):
        assert _case_key(other.to_dict()) != _case_key(asked.to_dict())
    assert build_options(ran).device == "cuda:1"


def _tagged(tag: str) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and tag.encode() in (proc / "environ").read_bytes():
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def test_a_killed_rank_ends_the_run_and_leaves_no_process(tmp_path):
    tag = f"genaccel-test-{uuid.uuid4().hex}"
    r = genaccel("run", "llama/t-t", "--preset", "tiny", "--samples", "1", "--max-new-tokens", "2", "--tp", "2",
                 "--out", str(tmp_path / "r"), env={"GENACCEL_TEST_KILL_RANK": "1", "GENACCEL_TEST_TAG": tag,
                                                     "GENACCEL_TP_TIMEOUT": "60"}, timeout=300)
    assert r.returncode == 3, r.stderr[-3000:]
    assert r.stderr.splitlines()[-1] == "genaccel: error: rank 1 of 2 was killed by SIGKILL; the other ranks were stopped"
    time.sleep(1)
    assert _tagged(tag) == []
    assert not (tmp_path / "r" / "report.json").exists()


BENCH = """
[defaults]
device = "cpu"
samples = 2
max_new_tokens = 4
warmup = 0

[[cases]]
workload = "llama/t-t"
preset = "tiny"
stacks = [[], ["static-kv"], ["sdpa"]]
"""
TP_CASE = """
[[cases]]
workload = "llama/t-t"
preset = "tiny"
tp = 2
stacks = [["static-kv"]]
"""


def test_bench_spread_over_devices_matches_the_serial_bench_and_records_a_dead_worker(tmp_path):
    cfg, cfg_tp = tmp_path / "bench.toml", tmp_path / "bench-tp.toml"
    cfg.write_text(BENCH)
    cfg_tp.write_text(BENCH + TP_CASE)  # and a tensor-parallel case that takes both devices
    r = genaccel("bench", str(cfg), "--out", str(tmp_path / "serial"))
    assert r.returncode == 0, r.stderr[-3000:]
    r = genaccel("bench", str(cfg_tp), "--devices", "cpu,cpu", "--out", str(tmp_path / "spread"),
                 env={"GENACCEL_TEST_KILL_WORKER": "2"})  # the third case's worker dies
    assert r.returncode == 3, r.stderr[-3000:]
    serial, spread = cases(tmp_path / "serial" / "report.json"), cases(tmp_path / "spread" / "report.json")
    assert [c["label"] for c in spread] == [c["label"] for c in serial] + ["static-kv tp2"]
    assert [c["label"] for c in serial] == ["baseline", "static-kv", "sdpa"]
    assert [c["status"] for c in serial] == ["ok"] * 3
    for a, b in zip(serial[:2] + serial[1:2], spread[:2] + spread[3:]):  # the tp = 2 case decodes as static-kv
        assert b["status"] == "ok" and [s["output_ids"] for s in a["samples"]] == [s["output_ids"] for s in b["samples"]]
    assert spread[3]["summary"]["tp"] == 2 and spread[3]["config"]["tp"] == 2
    assert spread[2]["status"] == "failed"
    assert spread[2]["error"] == "the worker on cpu was killed by SIGKILL before writing its result"
    assert not (tmp_path / "spread" / ".workers").exists()
