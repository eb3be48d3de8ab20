"""The command line end to end on the tiny preset, and every bad input's one-line error."""

import json

import pytest
import torch
from genaccel.api import OptimizationSpec, hookimpl
from genaccel.cli import main
from genaccel.plugin.manager import build_registry, make_plugin_manager
from genaccel.report.store import Report
from genaccel.run.case import run_case_safe
from genaccel.run.resolve import resolve
from genaccel.testing import RunConfig

TINY = ["--preset", "tiny", "--samples", "2", "--max-new-tokens", "6"]


def test_list_shows_workloads_decoders_optimizations(capsys):
    assert main(["list", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    llama = next(w for w in data["workloads"] if w["name"] == "llama/t-t")
    assert llama["plugin"] == "llama" and {"tiny", "small", "7b", "34b"} <= set(llama["presets"])
    assert llama["default_decoder"] == "greedy"
    opts = {o["name"]: o for o in data["optimizations"]}
    assert opts["cuda-graph"]["devices"] == ["cuda"] and opts["sdpa"]["lossless"] is True
    assert main(["list"]) == 0
    assert "llama/t-t" in capsys.readouterr().out


def test_run_writes_the_report(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "llama/t-t", *TINY, "--opt", "static-kv,sdpa,cuda-graph", "--out", str(out)]) == 0
    doc = json.loads((out / "report.json").read_text())
    assert doc["schema_version"] == 2 and doc["workload"] == "llama/t-t" and doc["decoder"] == "greedy"
    assert doc["optimizations"] == ["sdpa", "static-kv"]  # stage order, whatever the user's order
    assert doc["skipped_optimizations"][0]["name"] == "cuda-graph"
    assert {"torch", "transformers", "genaccel", "genaccel-llama"} <= set(doc["environment"]["versions"])
    assert doc["environment"]["memory_bandwidth_bytes_per_s"] > 0
    assert len(doc["samples"]) == 2
    for rec in doc["samples"]:
        assert rec["output_tokens"] == 6 and rec["latency_s"] >= rec["ttft_s"] > 0 and rec["tpot_s"] > 0
    s = doc["summary"]
    assert s["latency_s"]["p50"] > 0 and s["output_tokens_per_s"] > 0 and s["mbu_p50"] > 0
    assert s["decode_step_s"]["p50"] > 0 and s["decode_steps"] == 2 * 5
    # MBU: bytes read by the decode steps over their time, over the bandwidth, at most 1 (recomputed here)
    bandwidth, step_bytes = s["mbu_bandwidth"]["bytes_per_s"], s["bytes_per_decode_step"]
    decode_s = sum(r["output_tokens"] - 1 for r in doc["samples"]) / s["decode_tokens_per_s"]
    assert s["mbu"] == pytest.approx(min(step_bytes * s["decode_steps"] / decode_s / bandwidth, 1.0), rel=1e-6)
    assert s["mbu_p50"] == pytest.approx(min(step_bytes / s["decode_step_s"]["p50"] / bandwidth, 1.0), rel=1e-6)
    assert doc["label"] == "sdpa+static-kv (skipped cuda-graph)"
    assert s["model_bytes"] > 0 and s["peak_memory_bytes"] > 0 and s["compile_s"] == 0
    assert (out / "report.md").exists()
    assert "skipped cuda-graph" in capsys.readouterr().out


def test_ablate_reports_speedups_and_a_chart(tmp_path, capsys):
    out = tmp_path / "ablate"
    assert main(["ablate", "llama/t-t", *TINY, "--steps", "sdpa,static-kv", "--out", str(out)]) == 0
    doc = json.loads((out / "report.json").read_text())
    assert [c["label"] for c in doc["cases"]] == ["transformers generate", "baseline", "sdpa", "sdpa+static-kv"]
    outputs = [[r["output_ids"] for r in c["samples"]] for c in doc["cases"]]
    assert all(o == outputs[0] for o in outputs)
    assert list(out.glob("*speedup.png")) and "× previous step" in (out / "report.md").read_text()


def test_bench_and_compare(tmp_path, capsys):
    cfg = tmp_path / "bench.toml"
    cfg.write_text('[defaults]\nsamples = 1\nmax_new_tokens = 4\npreset = "tiny"\n\n'
                   '[[cases]]\nworkload = "llama/t-t"\nstacks = [[], ["sdpa", "compile"]]\n\n'
                   '[[cases]]\nworkload = "notinstalled/x"\n')
    assert main(["bench", str(cfg), "--out", str(tmp_path / "a")]) == 0
    doc = json.loads((tmp_path / "a" / "report.json").read_text())
    assert [c["status"] for c in doc["cases"]] == ["skipped", "ok", "ok"]
    faster = json.loads(json.dumps(doc))  # the compiled case twice as fast, the baseline unchanged
    faster["cases"][2]["summary"]["throughput_per_s"] *= 2
    faster["cases"][2]["summary"]["latency_s"]["mean"] /= 2
    (tmp_path / "b.json").write_text(json.dumps(faster))
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "a" / "report.json"), str(tmp_path / "b.json")]) == 0
    rows = {line.split("|")[1].strip(): line for line in capsys.readouterr().out.splitlines() if "llama/t-t" in line}
    assert "1.00×" in rows["llama/t-t baseline bs1"] and "+0.0%" in rows["llama/t-t baseline bs1"]
    assert "2.00×" in rows["llama/t-t sdpa+compile bs1"] and "+100.0%" in rows["llama/t-t sdpa+compile bs1"]


def test_bench_case_without_its_checkpoint_is_a_skip_naming_the_command(tmp_path):
    cfg = tmp_path / "bench.toml"
    cfg.write_text('[defaults]\nsamples = 1\nmax_new_tokens = 4\n\n'
                   '[[cases]]\nworkload = "llama/t-t"\ncheckpoint = "{cache}/checkpoints/none-here"\n'
                   'make_checkpoint = "genaccel train-layerskip llama/t-t --preset tiny"\n'
                   'stacks = [["layerskip"]]\n\n'
                   '[[cases]]\nworkload = "llama/t-t"\npreset = "tiny"\nstacks = [[]]\n')
    assert main(["bench", str(cfg), "--out", str(tmp_path / "a")]) == 0
    cases = json.loads((tmp_path / "a" / "report.json").read_text())["cases"]
    assert [c["status"] for c in cases] == ["skipped", "ok"]
    assert "checkpoints/none-here does not exist; make it with: genaccel train-layerskip" in cases[0]["error"]
    assert "{cache}" not in cases[0]["error"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "llama/tt"], "unknown workload 'llama/tt'; did you mean 'llama/t-t'?"),
        (["run", "llama/t-t", "--preset", "tiny", "--opt", "sdpx"], "unknown optimization 'sdpx'; did you mean 'sdpa'?"),
        (["run", "llama/t-t", "--preset", "tiny", "--decoder", "beams"], "unknown decoder .beams.; did you mean .beam."),
        (["run", "llama/t-t", "--preset", "huge"], "unknown preset of llama/t-t 'huge'"),
        (["run", "llama/t-t", "--preset", "tiny", "--opt", "cuda-graph"], "'cuda-graph' needs static-kv"),
        (["run", "llama/t-t", "--preset", "tiny", "--device", "cuda"], "no CUDA device is visible"),
        (["run", "llama/t-t", "--preset", "tiny", "--batch-size", "0"], "bad option: 'batch_size' must be >= 1"),
        (["run", "llama/t-t", "--checkpoint", "/nonexistent"], "does not exist"),
        (["run", "llama/t-t", "--preset", "tiny", "--max-new-tokens", "8", "--cache-len", "40"],
         r"does not fit --cache-len 40; raise --cache-len to at least"),
        (["run", "llama/t-t", "--preset", "tiny", "--decoder", "top-p", "--top-pp", "0.9"],
         "unknown option '--top-pp' of genaccel run; did you mean '--top-p'"),
        (["run", "llama/t-t", "--preset", "tiny", "--temperature", "0.9"], "--temperature is not taken by llama/t-t"),
        (["run", "llama/t-t", "--preset", "tiny", "--opt", "layerskip", "--exit-layer", "x"], "--exit-layer takes an integer"),
        (["run", "llama/t-t", "--preset", "tiny", "--device", "cuda:7"], "cuda:7"),
        (["generate", "llama/t-t", "--preset", "tiny", "--prompt", " "], "--prompt is empty"),
        (["bench", "/nonexistent.toml"], "does not exist"),
        (["compare", "/nonexistent-a.json", "/nonexistent-b.json"], "does not exist"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    if "cuda" in argv and torch.cuda.is_available():
        pytest.skip("a CUDA device is visible")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("genaccel: error: ") and err.count("\n") == 1 and "Traceback" not in err
    import re

    assert re.search(message, err), err


class _Exploding:
    @hookimpl
    def genaccel_register_optimizations(self, register):
        def apply(ctx):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

        register(OptimizationSpec(name="explode", description="runs out of memory", stage="weights", apply=apply))


def test_out_of_memory_is_recorded_and_the_bench_goes_on(tmp_path):
    pm = make_plugin_manager()
    pm.register(_Exploding(), name="exploding")
    registry = build_registry(pm)
    report = Report(tmp_path, "bench", {}, {})
    for opts in (("explode",), ("sdpa",)):
        config = RunConfig(workload="llama/t-t", preset="tiny", samples=1, max_new_tokens=3, optimizations=opts)
        report.add(run_case_safe(resolve(registry, config), progress=False))
    doc = json.loads((tmp_path / "report.json").read_text())
    assert [c["status"] for c in doc["cases"]] == ["oom", "ok"]
    assert "out of memory" in doc["cases"][0]["error"]


def test_profile_with_compile_uses_an_eager_twin(tmp_path, capsys):
    out = tmp_path / "prof"
    assert main(["profile", "llama/t-t", *TINY, "--opt", "sdpa,static-kv,compile", "--out", str(out)]) == 0
    doc = json.loads((out / "profile.json").read_text())
    prof = doc["profiles"][0]
    assert set(prof["phases"]) == {"prefill", "decode"}
    assert prof["phases"]["decode"]["calls"] == 2 * 5
    assert "eager twin (stack sdpa+static-kv)" in prof["method"]
    decode = prof["phases"]["decode"]
    assert abs(sum(decode["categories"].values()) + decode["Overhead"] - decode["wall_us"]) < 0.02 * decode["wall_us"]
    assert decode["categories"]["Linear"] > 0 and prof["eager_twin"]["phases"]["decode"]["categories"]["KV-cache update"] > 0
    assert (out / "breakdown.png").stat().st_size > 1000 and (out / "trace.json").stat().st_size > 1000
    assert "genaccel.phase::decode" in (out / "trace.json").read_text()
    work = prof["work"]["phases"]  # FLOPs counted on the eager twin, rates against this run's times
    assert prof["work"]["counted_on"].startswith("eager twin")
    assert work["decode"]["flops"] > 0 and work["decode"]["bytes"] > 0 and work["decode"]["mbu"] > 0
    assert work["prefill"]["arithmetic_intensity"] > work["decode"]["arithmetic_intensity"]
    assert prof["work"]["gemm_peak_flops_per_s"] > 0


def test_characterize_gives_table_ii_and_a_latency_distribution(tmp_path, capsys):
    out = tmp_path / "char"
    assert main(["characterize", "llama/t-t", "--preset", "tiny", "--samples", "6", "--out", str(out)]) == 0
    doc = json.loads((out / "characterize.json").read_text())
    row = doc["table"][0]
    assert 44 <= row["input"]["tokens"]["min"] <= row["input"]["tokens"]["mean"] <= row["input"]["tokens"]["max"] <= 430
    assert row["output_tokens"]["min"] >= 55 and row["decode_steps"]["mean"] == row["output_tokens"]["mean"] - 1
    assert row["samples"] == 6 and (out / "latency.png").exists()
    assert "| llama/t-t | tokens |" in capsys.readouterr().out
