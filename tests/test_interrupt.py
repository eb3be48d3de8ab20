"""A bench stopped part-way keeps its finished cases and resumes; a second run into its output
directory meanwhile fails at once.  Real subprocesses, interrupted with SIGINT (Ctrl-C) and SIGTERM
(what timeout, schedulers and CI runners send)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from genaccel.cli import main
from genaccel.files import OutputDir

# The subprocess: the CLI with the 1 GiB bandwidth probe replaced by a constant.  Ctrl-C's default handler is
# installed whatever this process inherited (a shell's background job ignores SIGINT).
CLI = ("import signal, sys, genaccel.engine.machine as m; m._stream_bandwidth = lambda *a: 1e10; "
       "signal.signal(signal.SIGINT, signal.default_int_handler); "
       "from genaccel.cli import main; sys.exit(main(sys.argv[1:]))")


def _cases(path):
    try:
        return json.loads(path.read_text())["cases"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return []


@pytest.fixture
def bench(tmp_path, monkeypatch):
    """A bench of 12 tiny cases started in a subprocess, once it has finished its first case: (config, report, child).
    This process has imported torch and stubbed its bandwidth probe before (an import while the child runs
    would let it finish).  A child still running at teardown (a test that failed before ending it) is killed."""
    import genaccel.engine.machine as measure

    monkeypatch.setattr(measure, "_stream_bandwidth", lambda *a: 1e10)
    cfg = tmp_path / "bench.toml"
    cfg.write_text('[defaults]\nsamples = 2\npreset = "tiny"\n\n[[cases]]\nworkload = "hstu/ranking"\n'
                   'seq_lens = [512, 1024, 2048]\nbatch_sizes = [1, 2]\nstacks = [[], ["hstu-fused-attention"]]\n')
    report = tmp_path / "b" / "report.json"
    child = subprocess.Popen([sys.executable, "-c", CLI, "bench", str(cfg), "--out", str(report.parent)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    deadline = time.monotonic() + 120
    while not _cases(report) and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    if child.poll() is not None:
        pytest.fail("the bench ended before it could be interrupted: " + child.stderr.read()[-2000:])
    yield cfg, report, child
    if child.poll() is None:
        child.kill()
        child.wait()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process")
def test_interrupted_bench_keeps_its_cases_resumes_and_holds_its_lock(bench, capsys):
    cfg, report, child = bench
    out = report.parent
    os.kill(child.pid, signal.SIGSTOP)  # held still, lock and all, whatever the next call costs
    # a second run into the same folder fails at once, naming the holder
    assert main(["run", "hstu/ranking", "--preset", "tiny", "--samples", "1", "--seq-len", "64",
                 "--out", str(out)]) == 2
    assert "is in use by another genaccel run" in capsys.readouterr().err
    child.send_signal(signal.SIGINT)  # pending until it continues
    os.kill(child.pid, signal.SIGCONT)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 130, err[-2000:]
    assert f"finished cases are in {report}" in err and "Traceback" not in err
    done = _cases(report)
    total = 12
    assert 1 <= len(done) < total and all(c["status"] == "ok" for c in done)
    assert main(["bench", str(cfg), "--out", str(out), "--resume"]) == 0
    assert capsys.readouterr().err.count("finished before, kept") == len(done)
    resumed = _cases(report)
    assert len(resumed) == total and resumed[: len(done)] == done


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM to a child process")
def test_sigterm_ends_a_bench_as_sigint_does(bench):
    _, report, child = bench
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 143, err[-2000:]
    assert f"genaccel: terminated (SIGTERM); finished cases are in {report}" in err and "Traceback" not in err
    done = _cases(report)
    assert 1 <= len(done) < 12 and all(c["status"] == "ok" for c in done)
    OutputDir(report.parent, resume=True).close()  # the lock was released: the bench can be resumed
