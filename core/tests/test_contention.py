"""Honest numbers: each case's bandwidth probes and contention record, MBU over the highest of the
reference and the probes (at most 100%), INVALID marks and no headline from a contended case."""

import types

import torch
from genaccel.engine import machine as measure
from genaccel.plugin.batch import BatchResult
from genaccel.plugin.roles import TokenModel, WeightStreaming
from genaccel.report.render import render
from genaccel.report.results import SCHEMA_VERSION, SampleRecord
from genaccel.run import summary as runner
from PIL import Image


def test_probe_is_short_and_positive():
    assert measure.probe_bandwidth("cpu", nbytes=16 << 20, budget_s=0.02) > 0


def test_contention_from_other_processes_load_and_probes(monkeypatch):
    cpu = iter([(100.0, 4), (104.0, 4)])  # the machine used 4 CPU-seconds over the block
    own = iter([10.0, 11.0])  # this process 1 of them
    clock = iter([0.0, 1.0])
    monkeypatch.setattr(measure, "_machine_cpu", lambda: next(cpu))
    monkeypatch.setattr(measure, "_own_cpu", lambda pids=(): next(own))
    monkeypatch.setattr(measure, "_load", lambda: 1.0)
    monkeypatch.setattr(measure.time, "perf_counter", lambda: next(clock))
    with measure.Contention(threads=2) as c:
        pass
    r = c.judge((20e9, 21e9))
    assert r["other_cores"] == 3.0 and r["contended"]  # 3 cores of others, 4 - 2 = 2 free
    assert "other processes used 3.0 cores" in r["reasons"][0]

    c.result.update(other_cores=1.0)
    assert not c.judge((20e9, 21e9))["contended"]
    far = c.judge((10e9, 20e9))
    assert far["contended"] and "probes far apart" in far["reasons"][0]
    c.result.update(load_before=9.0)
    assert "load average 9.0" in c.judge()["reasons"][0]


def test_mbu_uses_the_highest_bandwidth_and_never_exceeds_one(monkeypatch):
    bw = measure.mbu_bandwidth(17.9e9, (30e9, 28e9))
    assert bw["bytes_per_s"] == 30e9 and bw["source"] == "probe before"
    assert measure.mbu_bandwidth(40e9, (30e9, None))["source"] == "reference"

    class Ctx:
        workload = types.SimpleNamespace(unit="token")
        config = types.SimpleNamespace(repeat=1)
        device = "cpu"
        instance = types.SimpleNamespace(module=torch.nn.Linear(2, 2), weight_bytes_per_step=lambda: 1e9,
                                         kv_bytes_per_token=lambda: 0)

        def has(self, role):
            return role in (TokenModel, WeightStreaming)

    monkeypatch.setattr(runner, "measure_bandwidth", lambda device: 10e9)
    res = BatchResult(records=[], outputs=[], latency_s=1.0, decode_s=0.5, decode_steps=10, step_s=[0.05] * 10)
    recs = [SampleRecord(id="a", latency_s=1.0, units=11, output_tokens=11)]
    mem = types.SimpleNamespace(peak=0, start=0)
    cond = {"probe_before_bytes_per_s": 15e9, "probe_after_bytes_per_s": 12e9, "reasons": [], "contended": False}
    s = runner.summarize(Ctx(), [res], recs, mem, [], False, cond)
    # 10 GB read in 0.5 s = 20 GB/s over the highest figure, the probe's 15 GB/s: capped at 1
    assert s["mbu_bandwidth"]["bytes_per_s"] == 15e9 and s["mbu"] == 1.0 and abs(s["mbu_uncapped"] - 4 / 3) < 1e-9
    assert s["contention"] is cond


def _case(label, tps, decoder="greedy", reasons=()):
    return {
        "label": label, "status": "ok", "workload": "x/y", "preset": "tiny", "decoder": decoder, "batch_size": 1,
        "device": "cpu", "dtype": "float32", "skipped_optimizations": [], "optimization_notes": {},
        "samples": [{"latency_s": 1 / tps, "output_tokens": 4}], "unit": "token",
        "summary": {"latency_s": {"mean": 1.0, "p50": 1.0, "p90": 1.0}, "unit": "token", "throughput_per_s": tps,
                    "output_tokens_per_s": tps, "mbu": 1.0, "mbu_uncapped": 1.3, "mbu_p50": 0.5,
                    "mbu_bandwidth": {"bytes_per_s": 30e9, "source": "probe after", "reference_bytes_per_s": 17.9e9,
                                      "probe_before_bytes_per_s": 25e9, "probe_after_bytes_per_s": 30e9},
                    "contention": {"reasons": list(reasons), "contended": bool(reasons)}},
    }


STEPS = ["sdpa", "static-kv", "compile", "cuda-graph", "autoquant", "layerskip"]


def test_contended_cases_are_invalid_and_give_no_headline(tmp_path):
    cases = [_case("transformers generate", 2.0, decoder="hf-generate"), _case("baseline", 1.0)]
    cases += [_case("+".join(STEPS[: i + 1]), 2.0 + i) for i in range(len(STEPS))]
    cases[-1] = _case(cases[-1]["label"], 54.5, reasons=["other processes used 3.0 cores while it ran"])
    doc = {"schema_version": SCHEMA_VERSION, "kind": "ablate", "environment": {}, "cases": cases}
    md = render(doc, tmp_path).read_text()
    assert "1 of 8 cases were measured while other processes competed" in md
    assert "+layerskip **INVALID: contended** | 1 |" in md and "No headline ratio" in md and "**27.25×**" not in md
    assert "≥100% (probe) | 50% (probe) |" in md and "| 54.5 | 54.50× INVALID: contended |" in md
    assert "MBU over 30.0 GB/s, the probe after (reference 17.9, probes before/after 25.0/30.0 GB/s)" in md

    cases[-1] = _case(cases[-1]["label"], 54.5)
    md = render(doc, tmp_path).read_text()
    assert "INVALID" not in md and "**27.25×**" in md


def test_speedup_plot_gives_every_stack_its_own_row(tmp_path):
    """Bars lie horizontally with one label per row: the figure grows with the stacks, so seven
    labels of up to six steps never run into each other."""
    few = [_case("baseline", 1.0), _case("sdpa", 2.0)]
    many = few + [_case("+".join(STEPS[: i + 1]), 2.0 + i) for i in range(len(STEPS))]
    sizes = []
    for name, cases in (("few", few), ("many", many)):
        doc = {"schema_version": SCHEMA_VERSION, "kind": "ablate", "environment": {}, "cases": cases}
        render(doc, tmp_path / name if (tmp_path / name).mkdir() is None else None)
        sizes.append(Image.open(tmp_path / name / "00-x-y-bs1-speedup.png").size)
    assert sizes[1][1] >= sizes[0][1] + 0.4 * 120 * (len(many) - len(few))  # 0.45 in per row at 120 dpi
