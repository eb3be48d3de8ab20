"""A workload that is not a token model, defined here and nowhere in the core: a small denoising
loop over a tiny convolutional network with one self-attention block, whose unit of work is an
image.  It goes through run, ablate (sdpa), bench and the profiler with the core as it is."""

import csv
import io
import json
import re
import time

import attrs
import pytest
import torch
from genaccel.api import WorkloadSpec, hookimpl
from genaccel.cli import main
from genaccel.engine.profiling import phase
from genaccel.plugin.manager import build_registry, make_plugin_manager
from genaccel.plugin.roles import AttentionSwitch, BatchRunner
from torch import nn
from torch.nn import functional as F

SIDE, CHANNELS, STEPS = 8, 8, 3


@attrs.frozen
class NoiseSample:
    id: str
    seed: int
    input_lengths: dict = attrs.field(factory=lambda: {"pixels": SIDE * SIDE}, hash=False)


class TinyDenoiser(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv_in = nn.Conv2d(3, CHANNELS, 3, padding=1)
        self.qkv = nn.Linear(CHANNELS, 3 * CHANNELS)
        self.conv_out = nn.Conv2d(CHANNELS, 3, 3, padding=1)
        self.attention = "eager"

    def forward(self, x):
        h = F.silu(self.conv_in(x))
        b, c, hh, ww = h.shape
        q, k, v = self.qkv(h.flatten(2).transpose(1, 2)).chunk(3, dim=-1)
        if self.attention == "sdpa":
            a = F.scaled_dot_product_attention(q, k, v)
        else:
            a = torch.softmax(q @ k.transpose(1, 2) / c**0.5, dim=-1) @ v
        return self.conv_out(h + a.transpose(1, 2).reshape(b, c, hh, ww))


class ToyDiffusion:
    """Denoise random noise into an image in a few steps; each image is one unit of work."""

    random_weights = True

    def __init__(self, options):
        torch.manual_seed(options.seed)
        self.module = TinyDenoiser().eval()

    def make_samples(self, n, seed, max_new_tokens, seq_len=None):
        return [NoiseSample(id=f"noise/{i}", seed=seed + i) for i in range(n)]

    def describe(self):
        return {"parameters": sum(p.numel() for p in self.module.parameters()), "steps": STEPS, "side": SIDE}

    def set_attention(self, impl):
        self.module.attention = impl

    @torch.no_grad()
    def run_batch(self, batch):
        t0 = time.perf_counter()
        with phase("denoise"):
            x = torch.stack([torch.randn(3, SIDE, SIDE, generator=torch.Generator().manual_seed(s.seed)) for s in batch])
            for _ in range(STEPS):
                x = x - 0.5 * self.module(x)
        t1 = time.perf_counter()
        with phase("to pixels"):
            pixels = ((x.clamp(-1, 1) + 1) * 127.5).to(torch.uint8)
        t2 = time.perf_counter()
        outputs = [img.flatten()[:4].tolist() for img in pixels]
        per_sample = {"denoise": (t1 - t0) / len(batch), "to pixels": (t2 - t1) / len(batch)}
        return {"outputs": outputs, "model_s": t2 - t0, "phases": {"denoise": t1 - t0, "to pixels": t2 - t1},
                "records": [{"denoise_steps": STEPS, "phases": per_sample} for _ in batch]}


ROLES = (BatchRunner, AttentionSwitch)


class ToyPlugin:
    @hookimpl
    def genaccel_register_workloads(self, register):
        register(WorkloadSpec(name="toy/denoise", description="a tiny denoising loop", build=ToyDiffusion,
                              presets=("tiny",), default_preset="tiny", default_decoder="nar", unit="image",
                              roles=ROLES))


@pytest.fixture
def cli(monkeypatch):
    pm = make_plugin_manager(load_entry_points=False)
    pm.register(ToyPlugin(), name="toy")
    registry = build_registry(pm)
    monkeypatch.setattr("genaccel.cli.app.default_registry", lambda: registry)
    return main


def _validate(doc):
    jsonschema = pytest.importorskip("jsonschema")
    from genaccel.report.results import schema

    jsonschema.validate(doc, schema())


def test_run_counts_images(cli, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli(["run", "toy/denoise", "--samples", "3", "--batch-size", "2", "--out", str(out)]) == 0
    doc = json.loads((out / "report.json").read_text())
    _validate(doc)
    assert doc["schema_version"] == 2 and doc["unit"] == "image" and doc["decoder"] == "nar"
    assert [r["units"] for r in doc["samples"]] == [1, 1, 1, 1]  # whole batches: the last is filled up
    assert {r["denoise_steps"] for r in doc["samples"]} == {STEPS} and set(doc["samples"][0]["phases"]) == {"denoise", "to pixels"}
    s = doc["summary"]
    assert s["unit"] == "image" and s["units"] == 4 and s["throughput_per_s"] == pytest.approx(4 / s["total_s"])
    assert s["ttft_s"] is None and s["output_tokens_per_s"] is None and s["mbu"] is None
    assert set(s["phase_s"]) == {"denoise", "to pixels"}
    assert "images/s" in capsys.readouterr().out and "images/s" in (out / "report.md").read_text()


def test_repeat_gives_the_spread_and_formats_print_the_same_numbers(cli, tmp_path, capsys):
    out = tmp_path / "rep"
    assert cli(["run", "toy/denoise", "--samples", "2", "--batch-size", "2", "--repeat", "3", "--format", "json",
                "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    doc = json.loads((out / "report.json").read_text())
    _validate(doc)
    assert [r["repeat"] for r in doc["samples"]] == [0, 0, 1, 1, 2, 2]
    s = doc["summary"]["repeats"]["throughput_per_s"]
    assert s["n"] == 3 and s["sd"] > 0 and s["ci95"][0] < s["mean"] < s["ci95"][1]
    (record,) = printed["cases"]
    assert record["throughput_per_s"] == doc["summary"]["throughput_per_s"] and record["throughput_sd"] == s["sd"]
    assert f" ± {s['sd']:.1f} images/s" in (out / "report.md").read_text()
    out = tmp_path / "ablate"
    assert cli(["ablate", "toy/denoise", "--samples", "1", "--steps", "sdpa", "--format", "csv", "--out", str(out)]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    md = (out / "report.md").read_text()
    assert [r["label"] for r in rows] == ["baseline", "sdpa"] and float(rows[0]["speedup_vs_baseline"]) == 1.0
    for r in rows:
        assert re.search(rf"\| {r['label']}( \*\*INVALID: contended\*\*)? \| 1 \| {float(r['latency_mean_s']):.3f} \|", md)
        assert f"| {float(r['throughput_per_s']):.1f} | {float(r['speedup_vs_baseline']):.2f}×" in md


def test_ablate_prints_a_speedup_table_in_images_per_second(cli, tmp_path, capsys):
    out = tmp_path / "ablate"
    assert cli(["ablate", "toy/denoise", "--samples", "2", "--steps", "sdpa", "--out", str(out)]) == 0
    doc = json.loads((out / "report.json").read_text())
    _validate(doc)
    assert [c["label"] for c in doc["cases"]] == ["baseline", "sdpa"]
    outputs = [[r["output_ids"] for r in c["samples"]] for c in doc["cases"]]
    assert outputs[0] == outputs[1]
    printed = capsys.readouterr().out
    assert "| stack | images/s | × baseline | × previous step |" in printed
    assert "| baseline |" in printed and "| sdpa |" in printed.split("× previous step")[-1]
    assert list(out.glob("*speedup.png")) and "| stack | images/s |" in (out / "report.md").read_text()


def _bench(cli, tmp_path, cases: str) -> dict:
    """``genaccel bench`` of these TOML ``cases`` (one sample each) into ``tmp_path/b``: its report, validated."""
    cfg = tmp_path / "bench.toml"
    cfg.write_text("[defaults]\nsamples = 1\n\n" + cases)
    assert cli(["bench", str(cfg), "--out", str(tmp_path / "b")]) == 0
    doc = json.loads((tmp_path / "b" / "report.json").read_text())
    _validate(doc)
    return doc


def test_bench_runs_and_profiles_it(cli, tmp_path):
    doc = _bench(cli, tmp_path, '[[cases]]\nworkload = "toy/denoise"\nstacks = [[], ["sdpa"]]\nprofile = true\n\n'
                                '[[cases]]\nworkload = "absent/x"\n')
    assert [(c["status"], c["unit"]) for c in doc["cases"]] == [("skipped", "token"), ("ok", "image"), ("ok", "image")]
    assert all(c["summary"]["throughput_per_s"] > 0 for c in doc["cases"][1:])
    profiles = doc["profiles"]
    assert [p["label"] for p in profiles] == ["baseline", "sdpa"]
    assert set(profiles[0]["phases"]) == {"denoise", "to pixels"} and profiles[0]["phases"]["denoise"]["calls"] >= 1
    assert "images/s" in (tmp_path / "b" / "report.md").read_text()
    assert cli(["compare", str(tmp_path / "b" / "report.json"), str(tmp_path / "b" / "report.json")]) == 0


def test_a_case_in_rounds_keeps_every_round_as_a_case_of_its_own(cli, tmp_path):
    """Rounds run alternately (A B A B), none a repeat of another, each with its round and samples."""
    doc = _bench(cli, tmp_path, '[[cases]]\nworkload = "toy/denoise"\nstacks = [[], ["sdpa"]]\nrounds = 2\n')
    assert [(c["label"], c["round"], c["status"]) for c in doc["cases"]] == [
        ("baseline round 1", 0, "ok"), ("sdpa round 1", 0, "ok"), ("baseline round 2", 1, "ok"), ("sdpa round 2", 1, "ok")]
    assert all(c["samples"] and c["config"]["round"] == c["round"] for c in doc["cases"])


def test_a_stack_the_same_as_its_neighbour_once_skips_are_left_out_runs_once(cli, tmp_path, capsys):
    doc = _bench(cli, tmp_path, '[[cases]]\nworkload = "toy/denoise"\nstacks = [["sdpa"], ["sdpa", "cuda-graph"], []]\n')
    assert [(c["label"], c["status"]) for c in doc["cases"]] == [
        ("sdpa", "ok"), ("sdpa (skipped cuda-graph)", "skipped"), ("baseline", "ok")]
    twin = doc["cases"][1]
    assert twin["error"].startswith("resolves to the same stack as sdpa here (cuda-graph: workload toy/denoise does "
                                    "not play role CUDAGraphable")
    assert twin["optimizations"] == ["sdpa", "cuda-graph"] and twin["skipped_optimizations"][0]["name"] == "cuda-graph"
    err = capsys.readouterr().err
    assert "[1/3] toy/denoise bs1 sdpa\n" in err  # nothing timed yet: no estimate
    assert "[2/3] toy/denoise bs1 sdpa+cuda-graph: the same as sdpa here, not run again" in err
    assert re.search(r"\[3/3\] toy/denoise bs1 baseline  ~1 min left", err)


def test_progress_estimates_the_time_left_from_finished_cases(monkeypatch, capsys):
    from genaccel.run import progress

    now = iter([0.0, 120.0, 120.0, 150.0, 150.0])  # a: 120 s, b: 30 s
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(now))
    p = progress.Progress(["a", "b", None, "a", "b", "c"])
    for i in (1, 2):
        p.start(i, "x")
        p.done(i)
    p.note(3, "kept")
    p.start(4, "x")
    err = capsys.readouterr().err.splitlines()
    # 4 × 120 s (b not timed yet: the mean of all); then a 120 s, b 30 s, c the mean, 75 s
    assert err == ["[1/6] x", "[2/6] x  ~8 min left", "[3/6] kept", "[4/6] x  ~4 min left"]


def _no_win(ctx):
    from genaccel.plugin.specs import NotApplied

    raise NotApplied(f"does not win on {ctx.device} for this module")


class LosingStep:
    @hookimpl
    def genaccel_register_optimizations(self, register):
        from genaccel.plugin.specs import OptimizationSpec

        register(OptimizationSpec(name="toy-compile", description="loses here", stage="compile", requires=AttentionSwitch,
                                  apply=_no_win))
        register(OptimizationSpec(name="toy-graph", description="needs toy-compile", stage="graph",
                                  requires=AttentionSwitch, needs="toy-compile", apply=lambda ctx: "graphed"))


def test_a_step_that_does_not_win_is_a_recorded_skip(monkeypatch, tmp_path):
    pm = make_plugin_manager(load_entry_points=False)
    pm.register(ToyPlugin(), name="toy")
    pm.register(LosingStep(), name="losing")
    registry = build_registry(pm)
    monkeypatch.setattr("genaccel.cli.app.default_registry", lambda: registry)
    out = tmp_path / "run"
    assert main(["run", "toy/denoise", "--samples", "1", "--opt", "sdpa,toy-compile,toy-graph", "--out", str(out)]) == 0
    doc = json.loads((out / "report.json").read_text())
    _validate(doc)
    assert doc["optimizations"] == ["sdpa"] and doc["label"] == "sdpa (skipped toy-compile,toy-graph)"
    assert doc["skipped_optimizations"] == [{"name": "toy-compile", "reason": "does not win on cpu for this module"},
                                            {"name": "toy-graph", "reason": "depends on skipped toy-compile"}]
    assert "skipped: `toy-compile` (does not win on cpu for this module)" in (out / "report.md").read_text()
