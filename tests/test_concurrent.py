"""Concurrent runs as real processes: two into one --out (one proceeds, the other fails at once),
two into different outputs sharing one fresh cache (both succeed, the cache stays whole), and a
tiny run's stderr free of third-party noise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

# The CLI with the 1 GiB bandwidth probe replaced by a constant; with $GO set, the probe (which a run
# reaches after locking its output directory) first waits for that file, so the test decides when
# the lock holder goes on.
CLI = ("import os, sys, time, genaccel.engine.machine as m\n"
       "def probe(*a):\n"
       "    go, t0 = os.environ.get('GO'), time.monotonic()\n"
       "    while go and not os.path.exists(go) and time.monotonic() - t0 < 120:\n"
       "        time.sleep(0.02)\n"
       "    return 1e10\n"
       "m._stream_bandwidth = probe\n"
       "from genaccel.cli import main\n"
       "sys.exit(main(sys.argv[1:]))\n")
RUN = ["run", "llama/t-t", "--preset", "tiny", "--samples", "1", "--max-new-tokens", "2"]

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file locks")


def _start(args, **env):
    return subprocess.Popen([sys.executable, "-c", CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, **env})


def _first_to_exit(procs, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                return p
        time.sleep(0.05)
    raise AssertionError("neither run ended")


def test_two_runs_into_one_output_directory(tmp_path):
    out, go = tmp_path / "out", tmp_path / "go"
    procs = [_start([*RUN, "--out", str(out)], GO=str(go)) for _ in range(2)]
    try:
        loser = _first_to_exit(procs)
        winner = procs[1 - procs.index(loser)]
        _, err = loser.communicate()
        assert loser.returncode == 2, err[-2000:]
        assert winner.poll() is None  # it failed while the other still held the folder
        lines = [x for x in err.splitlines() if x.startswith("genaccel: error:")]
        assert len(lines) == 1 and lines[0].startswith("genaccel: error: output directory"), err[-2000:]
        assert "Traceback" not in err
        assert "is in use by another genaccel run" in lines[0] and f"pid {winner.pid}" in lines[0]
        go.touch()
        stdout, err = winner.communicate(timeout=180)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert winner.returncode == 0, err[-2000:]
    assert json.loads((out / "report.json").read_text())["status"] == "ok"


def test_two_runs_share_one_fresh_cache(tmp_path):
    cache = tmp_path / "cache"
    env = {"GENACCEL_CACHE": str(cache)}
    procs = [_start([*RUN, "--out", str(tmp_path / f"out{i}")], **env) for i in range(2)]
    try:
        results = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0, err[-2000:]
        assert "Traceback" not in err and "corrupt" not in err
    for i in range(2):
        assert json.loads((tmp_path / f"out{i}" / "report.json").read_text())["status"] == "ok"
    from tokenizers import Tokenizer

    tokenizers = list((cache / "tokenizers").glob("*.json"))
    assert tokenizers and all(Tokenizer.from_file(str(t)).get_vocab_size() > 0 for t in tokenizers)
    assert all(v > 0 for v in json.loads((cache / "bandwidth.json").read_text()).values())
    leftovers = [p.name for p in cache.rglob("*") if p.name.endswith(".tmp")]
    assert not leftovers
    # third-party noise (torchao's kernels, transformers' deprecations) stays off a run's stderr
    for _, err in results:
        assert "Failed to load" not in err and "FutureWarning" not in err and "past_key_values" not in err, err
