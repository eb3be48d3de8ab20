"""Every malformed input, generated here: the command, its exit code, the words its one-line error
must hold, and no traceback.  The CLI runs in-process; a case that gets past validation runs the
tiny presets only."""

from __future__ import annotations

import json
import shutil
import struct
import threading
from pathlib import Path

import numpy as np
import pytest
from genaccel.cli import main
from genaccel.files import OutputDir, read_json_cache, write_json

ONE = ["--samples", "1", "--max-new-tokens", "2"]
HSTU = ["run", "hstu/ranking", "--preset", "tiny", "--samples", "1"]


@pytest.fixture(autouse=True)
def _no_bandwidth_probe(monkeypatch):
    """A run's environment measures memory bandwidth over 1 GiB; these tests need any number."""
    import genaccel.engine.machine as measure

    monkeypatch.setattr(measure, "_stream_bandwidth", lambda *a: 1e10)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A complete tiny Llama checkpoint; cases copy it and break the copy."""
    import torch
    from genaccel_llama.workload import preset_config, preset_tokenizer
    from transformers import LlamaForCausalLM

    path = tmp_path_factory.mktemp("ck") / "tiny"
    torch.manual_seed(0)
    LlamaForCausalLM(preset_config("tiny")).save_pretrained(path)
    preset_tokenizer(512).save_pretrained(path)
    return path


def _history(n, **over):
    return {"items": list(range(1, n + 1)), "actions": [0] * n, "timestamps": list(range(1000, 1000 + n)), **over}


def _jsonl(tmp, rows=None, raw=None):
    d = tmp / "histories"
    d.mkdir()
    (d / "h.jsonl").write_bytes(raw if raw is not None else "".join(json.dumps(r) + "\n" for r in rows).encode())
    return ["--data", str(d)]


def _copy(checkpoint, tmp, *, drop=(), without=(), settings=None):
    d = tmp / "ck"
    shutil.copytree(checkpoint, d)
    if drop:
        from safetensors.torch import load_file, save_file

        f = d / "model.safetensors"
        weights = load_file(f)
        save_file({k: v for k, v in weights.items() if not any(x in k for x in drop)}, f, metadata={"format": "pt"})
    for name in without:
        (d / name).unlink(missing_ok=True)
    if settings is not None:
        (d / "layerskip.json").write_text(settings)
    return ["--checkpoint", str(d)]


def _config_dir(tmp, data: bytes):
    d = tmp / "ck"
    d.mkdir()
    (d / "config.json").write_bytes(data)
    return ["--checkpoint", str(d)]


def _wav(tmp, claimed: int, payload: bytes):
    d = tmp / "wavs"
    d.mkdir()
    head = b"RIFF" + struct.pack("<I", 36 + claimed) + b"WAVE"
    fmt = b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
    (d / "a.wav").write_bytes(head + fmt + b"data" + struct.pack("<I", claimed) + payload)
    return ["--data", str(d)]


def _file(tmp, name, data: bytes):
    (tmp / name).write_bytes(data)
    return str(tmp / name)


def _prompt(tmp, data: bytes):
    d = tmp / "prompts"
    d.mkdir()
    (d / "a.py").write_bytes(data)
    return ["--data", str(d)]


def _bench(tmp, line: str, in_case: bool = False):
    """A one-case HSTU bench TOML with ``line`` in [defaults] (line 2) or in its case."""
    text = '[defaults]\n' + ('' if in_case else line + '\n') + 'preset = "tiny"\n\n[[cases]]\nworkload = "hstu/ranking"\n'
    return _file(tmp, "b.toml", (text + (line + "\n" if in_case else "")).encode())


def _report(tmp, doc):
    return _file(tmp, "r.json", json.dumps(doc).encode())


SPEECH = (np.sin(np.arange(4000) / 5) * 8000).astype("<i2").tobytes()

# (id, make(tmp, checkpoint) -> argv, exit code, words the error must hold)
CASES = [
    ("seq-len beyond the model", lambda t, c: ["run", "llama/t-t", "--preset", "tiny", *ONE, "--seq-len", "1000000"],
     2, ["--seq-len 1000000", "at most 16384"]),
    ("hstu seq-len beyond 8192", lambda t, c: [*HSTU, "--seq-len", "100000000"], 2, ["--seq-len 100000000", "8192"]),
    ("hstu empty history", lambda t, c: [*HSTU, *_jsonl(t, [_history(0)])], 2, ["h.jsonl:1", "0 events", "at least 17"]),
    ("hstu float item id", lambda t, c: [*HSTU, *_jsonl(t, [_history(20, items=[1.5] + list(range(19)))])],
     2, ["h.jsonl:1", "items[0] is 1.5", "whole numbers"]),
    ("hstu 3-event history", lambda t, c: [*HSTU, *_jsonl(t, [_history(3)])], 2, ["h.jsonl:1", "3 events", "16 candidates"]),
    ("hstu string id", lambda t, c: [*HSTU, *_jsonl(t, [_history(20, items=["a"] + list(range(19)))])],
     2, ["items[0]", '"a"']),
    ("hstu id beyond int64", lambda t, c: [*HSTU, *_jsonl(t, [_history(20, items=[2**70] + list(range(19)))])],
     2, ["items[0]", "0..6000"]),
    ("hstu non-UTF-8 line", lambda t, c: [*HSTU, *_jsonl(t, raw=b'{"items": [1]}\xff\n')], 2, ["h.jsonl", "not UTF-8", "line 1"]),
    ("hstu unequal lists", lambda t, c: [*HSTU, *_jsonl(t, [_history(20, actions=[0])])], 2, ["20 items, 1 actions"]),
    ("hstu time backwards", lambda t, c: [*HSTU, *_jsonl(t, [_history(20, timestamps=list(range(20, 0, -1)))])],
     2, ["timestamps go backwards"]),
    ("hstu fewer histories than samples",
     lambda t, c: ["run", "hstu/ranking", "--preset", "tiny", "--samples", "3", *_jsonl(t, [_history(40)])],
     2, ["holds 1 history", "3 samples"]),
    ("hstu data not a directory", lambda t, c: [*HSTU, "--data", str(t / "none")], 2, ["is not a directory"]),
    ("config.json not UTF-8", lambda t, c: ["run", "llama/t-t", *_config_dir(t, b'{"model_type": "\xff"}'), *ONE],
     2, ["config.json", "not UTF-8"]),
    ("config.json a list", lambda t, c: ["run", "llama/t-t", *_config_dir(t, b"[1, 2]"), *ONE],
     2, ["config.json", "JSON list", "JSON object"]),
    ("checkpoint missing weights", lambda t, c: ["run", "llama/t-t", *_copy(c, t, drop=("lm_head", "layers.1.mlp")), *ONE],
     2, ["lacks 4 weights", "lm_head.weight", "--allow-missing-weights"]),
    ("checkpoint without tokenizer",
     lambda t, c: ["run", "llama/t-t", *_copy(c, t, without=("tokenizer.json", "tokenizer_config.json")), *ONE],
     2, ["has no tokenizer", "tokenizer.json"]),
    ("layerskip.json string", lambda t, c: ["run", "llama/t-t", *_copy(c, t, settings='{"exit_layer": "two"}'),
                                            "--decoder", "self-speculative", *ONE],
     2, ["layerskip.json", 'exit_layer is "two"', "whole number"]),
    ("layerskip.json null", lambda t, c: ["run", "llama/t-t", *_copy(c, t, settings='{"draft_len": null}'),
                                          "--decoder", "self-speculative", *ONE],
     2, ["layerskip.json", "draft_len is null"]),
    ("layerskip.json a list", lambda t, c: ["run", "llama/t-t", *_copy(c, t, settings="[]"),
                                            "--decoder", "self-speculative", *ONE],
     2, ["layerskip.json", "JSON list"]),
    ("WAV ends mid-frame", lambda t, c: ["run", "seamless/s-t", "--preset", "tiny", *ONE,
                                        *_wav(t, 64000, SPEECH + b"\x01")], 2, ["a.wav", "mid-frame"]),
    ("llama prompt not UTF-8", lambda t, c: ["run", "llama/t-t", "--preset", "tiny", *ONE, *_prompt(t, b"x = '\xff'\n")],
     2, ["a.py", "not UTF-8", "line 1"]),
    ("llama prompt file empty", lambda t, c: ["run", "llama/t-t", "--preset", "tiny", *ONE, *_prompt(t, b" \n")],
     2, ["a.py", "is empty"]),
    ("--out under a file", lambda t, c: [*HSTU, "--seq-len", "64", "--out", _file(t, "f", b"x") + "/x"],
     2, ["--out", "which is a file"]),
    ("train --minutes -1", lambda t, c: ["train-layerskip", "llama/t-t", "--preset", "tiny", "--minutes", "-1",
                                         "--out", str(t / "ls")], 2, ["minutes", "> 0"]),
    ("train --out under a file", lambda t, c: ["train-layerskip", "llama/t-t", "--preset", "tiny", "--train-steps", "1",
                                               "--out", _file(t, "f", b"x") + "/x"], 2, ["which is a file"]),
    ("bench TOML not UTF-8", lambda t, c: ["bench", _file(t, "b.toml", b'[[cases]]\nworkload = "\xff"\n')],
     2, ["b.toml", "not UTF-8"]),
    ("bench TOML a directory", lambda t, c: ["bench", str(t)], 2, ["is a directory"]),
    ("bench samples = 1.5", lambda t, c: ["bench", _bench(t, "samples = 1.5")], 2, ["b.toml:2", "samples = 1.5", "whole"]),
    ('bench samples = "2"', lambda t, c: ["bench", _bench(t, 'samples = "2"')], 2, ["b.toml:2", "samples = '2'"]),
    ("bench misspelt optimization", lambda t, c: ["bench", _bench(t, 'stacks = [[], ["hstu-fused-atention"]]', True)],
     2, ["b.toml", "unknown optimization 'hstu-fused-atention'", "did you mean 'hstu-fused-attention'"]),
    ("bench misspelt preset", lambda t, c: ["bench", _bench(t, 'preset = "tinny"', True)], 2, ["b.toml", "'tinny'", "'tiny'"]),
    ("optimization differing in case", lambda t, c: [*HSTU, "--opt", "HSTU-FUSED-ATTENTION"],
     2, ["did you mean 'hstu-fused-attention'"]),
    ("compare a JSON list", lambda t, c: ["compare", _report(t, []), _report(t, [])], 2, ["r.json", "JSON list"]),
    ("compare null", lambda t, c: ["compare", _report(t, None), _report(t, None)], 2, ["r.json", "JSON null"]),
    ("compare a directory", lambda t, c: ["compare", str(t), str(t)], 2, ["is a directory"]),
    ("compare not UTF-8", lambda t, c: ["compare", _file(t, "r.json", b"\xff"), str(t / "r.json")], 2, ["not UTF-8"]),
    ("compare without cases", lambda t, c: ["compare", _report(t, {"schema_version": 1}), str(t / "r.json")],
     2, ["has no cases"]),
    ("compare a profile.json", lambda t, c: ["compare", _report(t, {"schema_version": 2, "kind": "profile", "profiles": []}),
                                             str(t / "r.json")], 2, ["has no cases", "genaccel run, ablate or bench"]),
    ("--batch-size 0", lambda t, c: [*HSTU, "--batch-size", "0"], 2, ["batch_size", ">= 1"]),
    ("--samples 0", lambda t, c: [*HSTU, "--samples", "0"], 2, ["samples", ">= 1"]),
    ("--warmup -1", lambda t, c: [*HSTU, "--warmup", "-1"], 2, ["warmup", ">= 0"]),
    ("bench stacks a string", lambda t, c: ["bench", _bench(t, 'stacks = "sdpa"', True)],
     2, ["b.toml:6", "stacks must be a list of lists"]),
    ("bench batch_sizes empty", lambda t, c: ["bench", _bench(t, "batch_sizes = []", True)],
     2, ["b.toml:6", "batch_sizes must be a non-empty list"]),
    ('bench allow_missing_weights = "yes"', lambda t, c: ["bench", _bench(t, 'allow_missing_weights = "yes"', True)],
     2, ["--allow-missing-weights takes true or false"]),
    ("--out an existing file", lambda t, c: [*HSTU, "--out", _file(t, "f", b"x")], 2, ["--out", "is a file"]),
    ("llama --data a file", lambda t, c: ["run", "llama/t-t", "--preset", "tiny", *ONE, "--data", _file(t, "f", b"x")],
     2, ["--data", "is not a directory"]),
    ("hstu --data a file", lambda t, c: [*HSTU, "--data", _file(t, "f", b"x")], 2, ["--data", "is not a directory"]),
    ("stable-diffusion --image-size 0", lambda t, c: ["run", "stable-diffusion/t-i", "--preset", "tiny", "--samples", "1",
                                                      "--image-size", "0"], 2, ["--image-size must be >= 8"]),
    ("stable-diffusion --frames", lambda t, c: ["run", "stable-diffusion/t-i", "--preset", "tiny", "--samples", "1",
                                                "--frames", "4"], 2, ["--frames", "make-a-video/t-v"]),
    ("profile --out a file", lambda t, c: ["profile", "hstu/ranking", "--preset", "tiny", "--out", _file(t, "f", b"x")],
     2, ["--out", "is a file"]),
    ("profile over a profile.json", lambda t, c: ["profile", "hstu/ranking", "--preset", "tiny",
                                                  "--out", (_file(t, "profile.json", b"{}"), str(t))[1]],
     2, ["profile.json", "already exists", "--overwrite"]),
    ("characterize --out a file", lambda t, c: ["characterize", "hstu/ranking", "--preset", "tiny",
                                                "--out", _file(t, "f", b"x")], 2, ["--out", "is a file"]),
    ("generate --out a file", lambda t, c: ["generate", "llama/t-t", "--preset", "tiny", "--prompt", "x",
                                            "--out", _file(t, "f", b"x")], 2, ["--out", "is a file"]),
    ("layerskip-sweep --out a file", lambda t, c: ["layerskip-sweep", "llama/t-t", "--preset", "tiny", *ONE,
                                                   "--out", _file(t, "f", b"x")], 2, ["--out", "is a file"]),
    ("generate without a prompt input", lambda t, c: ["generate", "hstu/ranking", "--preset", "tiny", "--prompt", "x",
                                                      "--out", str(t / "g")], 2, ["takes none", "genaccel run hstu/ranking"]),
    ("--max-new-tokens beyond the model", lambda t, c: ["run", "llama/t-t", "--preset", "tiny", "--samples", "1",
                                                        "--max-new-tokens", "100000"], 2, ["--max-new-tokens 100000", "16384"]),
    ("layerskip-sweep --save without a checkpoint", lambda t, c: ["layerskip-sweep", "llama/t-t", "--preset", "tiny", *ONE,
                                                                  "--save"], 2, ["--save", "give --checkpoint DIR"]),
]


@pytest.mark.parametrize("make,code,words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input(make, code, words, tmp_path, checkpoint, capsys):
    argv = make(tmp_path, checkpoint)
    if argv[0] in ("run", "train-layerskip", "layerskip-sweep") and "--out" not in argv:
        argv += ["--out", str(tmp_path / "out")]
    out = Path(argv[argv.index("--out") + 1]) if "--out" in argv else None
    existed = out is not None and out.exists()
    assert main(argv) == code
    captured = capsys.readouterr()
    assert captured.err.startswith("genaccel: error: ") and captured.err.count("\n") == 1, captured.err
    assert captured.out == ""
    for w in words:
        assert w in captured.err, (w, captured.err)
    assert existed or out is None or not out.exists(), f"{out} was left behind"


def test_missing_weights_run_when_allowed_and_the_report_names_them(tmp_path, checkpoint, capsys):
    ck = _copy(checkpoint, tmp_path, drop=("lm_head", "layers.1.mlp"))
    assert main(["run", "llama/t-t", *ck, *ONE, "--allow-missing-weights", "false", "--out", str(tmp_path / "a")]) == 2
    assert "lacks 4 weights" in capsys.readouterr().err
    assert main(["run", "llama/t-t", *ck, *ONE, "--allow-missing-weights", "--out", str(tmp_path / "b")]) == 0  # bare flag
    err = capsys.readouterr().err
    assert "lacks 4 weights" in err and "they are random" in err and "Traceback" not in err
    model = json.loads((tmp_path / "b" / "report.json").read_text())["model"]
    assert model["random_weights"] == "partial" and len(model["missing_weights"]) == 4
    assert "lm_head.weight" in model["missing_weights"]
    assert main(["run", "llama/t-t", "--checkpoint", str(checkpoint), *ONE, "--allow-missing-weights", "true",
                 "--out", str(tmp_path / "c")]) == 0
    model = json.loads((tmp_path / "c" / "report.json").read_text())["model"]
    assert model["random_weights"] is False and model["missing_weights"] == []


def test_an_empty_out_is_a_usage_error_not_the_current_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for argv in ([*HSTU, "--out", ""], ["bench", "b.toml", "--out", " "]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2 and "--out: is empty" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_corrupt_cache_entries_are_rebuilt_with_a_warning(tmp_path, monkeypatch, capsys):
    cache = tmp_path / "cache"
    (cache / "tokenizers").mkdir(parents=True)
    (cache / "tokenizers" / "code-bpe-512.json").write_text('{"version": "1.0", "trunc')
    (cache / "bandwidth.json").write_text('{"x": 1')
    monkeypatch.setenv("GENACCEL_CACHE", str(cache))
    assert main(["run", "llama/t-t", "--preset", "tiny", *ONE, "--out", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    assert "code-bpe-512.json' is corrupt" in err and "bandwidth.json' is corrupt" in err and "Traceback" not in err
    assert json.loads((cache / "bandwidth.json").read_text())  # rebuilt, whole
    (cache / "bandwidth.json").write_text('{"cpu": "fast"}')
    assert read_json_cache(cache / "bandwidth.json", "x") == {"cpu": "fast"}  # its values are checked by the reader
    (cache / "bandwidth.json").write_text("[]")
    assert read_json_cache(cache / "bandwidth.json", "memory bandwidth") == {}
    assert "JSON list" in capsys.readouterr().err and not (cache / "bandwidth.json").exists()


def test_an_unusable_cache_directory_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    (tmp_path / "f").write_text("x")
    monkeypatch.setenv("GENACCEL_CACHE", str(tmp_path / "f"))
    assert main([*HSTU, "--seq-len", "64", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("genaccel: error: $GENACCEL_CACHE") and "is a file" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()  # the output folder it created and left empty is gone


def test_an_existing_report_is_kept_unless_overwritten(tmp_path, capsys):
    out = tmp_path / "o"
    argv = [*HSTU, "--seq-len", "64", "--out", str(out)]
    assert main(argv) == 0
    first = (out / "report.json").read_text()
    assert main(argv) == 2
    assert "already exists" in capsys.readouterr().err and (out / "report.json").read_text() == first
    assert main([*argv, "--overwrite"]) == 0


def test_a_second_run_into_a_locked_output_directory_fails_at_once(tmp_path, capsys):
    out = tmp_path / "o"
    with OutputDir(out):  # another run holds it
        assert main([*HSTU, "--seq-len", "64", "--out", str(out)]) == 2
    assert "is in use by another genaccel run" in capsys.readouterr().err
    assert main([*HSTU, "--seq-len", "64", "--out", str(out)]) == 0  # released


def test_bench_resume_skips_finished_cases_and_failed_cases_exit_3(tmp_path, capsys):
    cfg = tmp_path / "bench.toml"
    cfg.write_text('[defaults]\nsamples = 1\npreset = "tiny"\n\n'
                   '[[cases]]\nworkload = "hstu/ranking"\nseq_lens = [32]\nstacks = [[], ["hstu-fused-attention"]]\n')
    out = tmp_path / "b"
    assert main(["bench", str(cfg), "--out", str(out)]) == 0
    doc = json.loads((out / "report.json").read_text())
    assert [c["status"] for c in doc["cases"]] == ["ok", "ok"]
    assert main(["bench", str(cfg), "--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err
    doc["cases"] = doc["cases"][:1]  # as if stopped after the first case
    write_json(out / "report.json", doc)
    assert main(["bench", str(cfg), "--out", str(out), "--resume"]) == 0
    err = capsys.readouterr().err
    assert "finished before, kept" in err and err.count("finished before, kept") == 1
    again = json.loads((out / "report.json").read_text())
    assert [c["label"] for c in again["cases"]] == ["baseline", "hstu-fused-attention"]
    assert again["cases"][0]["summary"] == doc["cases"][0]["summary"]  # kept, not measured again
    cfg.write_text('[defaults]\nsamples = 1\npreset = "tiny"\ndata = "/nonexistent-histories"\n\n'
                   '[[cases]]\nworkload = "hstu/ranking"\n')
    assert main(["bench", str(cfg), "--out", str(tmp_path / "c")]) == 3
    assert "1 of 1 cases failed" in capsys.readouterr().err


def test_writers_of_the_same_file_never_collide(tmp_path):
    path, errors = tmp_path / "r.json", []

    def write(n):
        try:
            for i in range(50):
                write_json(path, {"writer": n, "i": i, "pad": "x" * 10000})
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and json.loads(path.read_text())["i"] == 49
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary left behind


def test_cpu_out_of_memory_is_recognized():
    from genaccel.errors import out_of_memory

    assert out_of_memory(RuntimeError("[enforce fail at alloc_cpu.cpp:118] DefaultCPUAllocator: can't allocate memory"))
    assert out_of_memory(MemoryError())
    assert not out_of_memory(RuntimeError("shape mismatch"))
