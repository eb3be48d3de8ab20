"""The suite "all together": each group's best lossless stack and best of all over its own baseline, their
geometric means, contended cases and references left out, in report.md and report.html."""

import html
import math

import pytest
from genaccel.report.render import render
from genaccel.report.results import SCHEMA_VERSION
from genaccel.report.suite import geomean, suite_summary


def _case(workload, label, tps, *, lossless=True, decoder="greedy", invalid=False, bs=1):
    return {"label": label, "status": "ok", "workload": workload, "unit": "token", "preset": "tiny", "decoder": decoder,
            "optimizations": [] if label == "baseline" else label.split("+"), "lossless": lossless, "batch_size": bs,
            "device": "cpu", "dtype": "float32", "samples": [],
            "summary": {"unit": "token", "throughput_per_s": tps, "latency_s": {"mean": 1 / tps},
                        "contention": {"reasons": ["another process"]} if invalid else None}}


CASES = [_case("a/t", "transformers", 50.0, decoder="hf-generate"), _case("a/t", "baseline", 10.0),
         _case("a/t", "sdpa+compile", 20.0), _case("a/t", "compile+int8", 40.0, lossless=False),
         _case("b/i", "baseline", 2.0), _case("b/i", "sdpa", 3.0), _case("b/i", "deepcache", 9.0, invalid=True),
         _case("c/v", "baseline", 1.0, invalid=True), _case("c/v", "sdpa", 5.0)]


def test_best_stacks_and_geometric_means():
    s = suite_summary(CASES)
    assert [(r["workload"], r["lossless"]["stack"], r["any"]["stack"]) for r in s["rows"]] == [
        ("a/t", "sdpa+compile", "compile+int8"), ("b/i", "sdpa", "sdpa")]  # c/v: no valid baseline
    assert s["rows"][0]["lossless"]["speedup"] == pytest.approx(2.0) and s["rows"][0]["any"]["speedup"] == 4.0
    assert s["lossless"] == pytest.approx(math.sqrt(2.0 * 1.5)) and s["any"] == pytest.approx(math.sqrt(4.0 * 1.5))
    assert (s["n_lossless"], s["n_any"]) == (2, 2)


def test_one_group_or_none_is_no_suite():
    assert suite_summary(CASES[:4]) is None and geomean([]) is None
    assert geomean([2.0, 8.0]) == pytest.approx(4.0)


def test_report_shows_the_suite(tmp_path):
    render({"schema_version": SCHEMA_VERSION, "kind": "bench", "environment": {}, "config": {}, "cases": CASES}, tmp_path)
    md, page = (tmp_path / "report.md").read_text(), html.unescape((tmp_path / "report.html").read_text())
    assert "| geometric mean |  |  |  | 1.73× over 2 groups | 2.45× over 2 groups |" in md
    assert "All together: geometric mean of each group's best stack over its baseline 2.45×" in page
    assert "3.88×" in md and "4.00× (compile+int8)" in page
