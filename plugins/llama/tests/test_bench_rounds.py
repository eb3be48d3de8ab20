"""Bench cases in rounds on the tiny preset: one that compares with llama.cpp where llama-cpp-python is
not installed is recorded skips (the reference and the genaccel stacks there for the comparison)
saying how to install it, nothing built or timed; a lossy one takes its accuracy in its first round."""

import json
import sys

from genaccel.testing import cli

CASE = """\
[[cases]]
workload = "llama/t-t"
preset = "tiny"
samples = 1
max_new_tokens = 4
reference = ["llama.cpp"]
gguf_type = "q4_0"
rounds = 2
stacks = [["sdpa", "static-kv"]]
"""


def test_a_llama_cpp_case_without_llama_cpp_python_is_recorded_skips(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # as if not installed: import fails, find_spec finds none
    monkeypatch.setattr("genaccel.run.case.run_case", lambda *a, **k: (_ for _ in ()).throw(AssertionError("ran")))
    (tmp_path / "b.toml").write_text(CASE)
    code, _, err = cli(capsys, "bench", str(tmp_path / "b.toml"), "--out", str(tmp_path / "out"))
    assert code == 0
    cases = json.loads((tmp_path / "out" / "report.json").read_text())["cases"]
    assert [(c["label"], c["status"]) for c in cases] == [
        ("llama.cpp round 1", "skipped"), ("sdpa+static-kv round 1", "skipped"),
        ("llama.cpp round 2", "skipped"), ("sdpa+static-kv round 2", "skipped")]
    assert all("pip install 'genaccel[llamacpp]'" in c["error"] and "llama_cpp module" in c["error"] for c in cases)
    assert "skipped llama/t-t llama.cpp round 1: this case compares with a reference engine, and llama.cpp needs" in err


def test_a_lossy_case_in_rounds_takes_its_accuracy_in_the_first_round_only(tmp_path, capsys):
    """The later rounds decode the same samples with the same weights: their accuracy is the first's."""
    (tmp_path / "b.toml").write_text('[[cases]]\nworkload = "llama/t-t"\npreset = "tiny"\ndtype = "bfloat16"\n'
                                     'samples = 1\nmax_new_tokens = 4\nrounds = 2\nstacks = [[]]\n')
    code, _, _ = cli(capsys, "bench", str(tmp_path / "b.toml"), "--out", str(tmp_path / "out"))
    assert code == 0
    cases = json.loads((tmp_path / "out" / "report.json").read_text())["cases"]
    assert [(c["round"], "accuracy" in c) for c in cases] == [(0, True), (1, False)]
