"""llama.cpp's trial run in a child process: a crash there is a reason to skip, not the end of the run."""

from genaccel.decoders.llamacpp import trial


def test_a_trial_that_crashes_or_fails_gives_why_and_one_that_runs_none(tmp_path):
    path = str(tmp_path / "model.gguf")
    crash = ("import os, signal, sys; print('loaded', sys.argv[1:], file=sys.stderr, flush=True); "
             "os.kill(os.getpid(), signal.SIGSEGV)")
    why = trial(path, 128, 2, 512, code=crash)
    assert why.startswith(f"died of SIGSEGV in a trial run of {path} in a child process: loaded [")
    assert "'128', '2', '512', '512'" in why and "\n" not in why  # context, threads, batch, vocabulary; one line
    why = trial(path, 128, 2, 512, code="import sys; sys.exit('no such tensor')")
    assert why.startswith("exited with status 1") and why.split(" (this")[0].endswith(": no such tensor")
    assert trial(path, 128, 2, 512, code="pass") is None
