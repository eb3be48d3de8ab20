"""Compiled steps cached across processes: a second process of the same case builds warm from
genaccel's cache and generates the same tokens; a changed shape builds cold."""

import json
import os
import subprocess
import sys


def _run(tmp_path, name: str, *extra: str) -> dict:
    out = tmp_path / name
    cmd = [sys.executable, "-m", "genaccel.cli", "run", "llama/t-t", "--preset", "tiny", "--samples", "1",
           "--max-new-tokens", "6", "--opt", "sdpa,static-kv,compile", "--out", str(out), *extra]
    env = {**os.environ, "GENACCEL_CACHE": str(tmp_path / "cache")}
    env.pop("TORCHINDUCTOR_CACHE_DIR", None)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads((out / "report.json").read_text())


def test_second_process_builds_warm_with_the_same_tokens_and_a_new_shape_builds_cold(tmp_path):
    cold = _run(tmp_path, "cold")
    warm = _run(tmp_path, "warm")
    assert cold["summary"]["compile_cache"]["build"] == "cold"
    assert cold["summary"]["compile_cache"]["misses"] > 0
    cache = warm["summary"]["compile_cache"]
    assert cache["build"] == "warm" and cache["hits"] > 0 and cache["misses"] == 0, cache
    assert cache["dir"].startswith(str(tmp_path / "cache"))
    assert [s["output_ids"] for s in warm["samples"]] == [s["output_ids"] for s in cold["samples"]]
    wider = _run(tmp_path, "wider", "--batch-size", "2", "--samples", "2")  # other decode shapes: other graphs
    assert wider["summary"]["compile_cache"]["build"] == "cold"
    assert wider["summary"]["compile_cache"]["misses"] > 0
