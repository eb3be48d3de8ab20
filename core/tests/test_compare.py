"""``genaccel compare`` for CI: a series of reports, deltas with their noise, ``--fail-above`` judged beyond the
threshold and the noise, INVALID cases apart, environment differences named, and the same numbers in
Markdown, CSV and JSON."""

import csv
import io
import json

import pytest
from genaccel.report.stats import noise, spread
from genaccel.testing import cli


def _case(label, tps, values=None, invalid=False):
    s = spread(values or [tps])
    return {"label": label, "status": "ok", "error": None, "workload": "x/y", "unit": "token", "preset": "tiny",
            "decoder": "greedy", "optimizations": [], "batch_size": 1, "device": "cpu", "dtype": "float32",
            "samples": [{"id": "0", "latency_s": 1 / tps, "units": 1, "batch": 0}],
            "summary": {"unit": "token", "throughput_per_s": tps, "latency_s": {"mean": 1 / tps},
                        "repeats": {"throughput_per_s": s},
                        "contention": {"reasons": ["another process used 1.5 cores"]} if invalid else None}}


def _report(path, cases, commit="aaa", torch="2.13.0"):
    doc = {"schema_version": 2, "kind": "bench", "config": {}, "cases": cases,
           "environment": {"cpu": "EPYC", "device": "cpu", "versions": {"torch": torch}, "git": {"commit": commit}}}
    path.write_text(json.dumps(doc))
    return str(path)


def test_spread_over_repetitions():
    s = spread([10.0, 12.0, 14.0])
    assert s["mean"] == 12.0 and s["sd"] == pytest.approx(2.0)
    assert s["ci95"] == pytest.approx([12 - 4.303 * 2 / 3**0.5, 12 + 4.303 * 2 / 3**0.5])
    assert spread([5.0]) == {"n": 1, "values": [5.0], "mean": 5.0, "sd": None, "ci95": None}
    assert noise(s, None) == pytest.approx(4.303 * 2 / 3**0.5 / 12) and noise(None, None) is None


def test_fail_above_judges_beyond_threshold_and_noise(tmp_path, capsys):
    base = _report(tmp_path / "a.json", [_case("steady", 100.0, [99.0, 100.0, 101.0]),
                                          _case("noisy", 100.0, [80.0, 100.0, 120.0]),
                                          _case("contended", 100.0, [99.0, 100.0, 101.0])])
    head = _report(tmp_path / "b.json", [_case("steady", 90.0, [89.0, 90.0, 91.0]),  # -10%, noise ~ ±3.5%: regression
                                          _case("noisy", 90.0, [70.0, 90.0, 110.0]),  # -10%, within ±70% noise
                                          _case("contended", 50.0, [49.0, 50.0, 51.0], invalid=True)], commit="bbb")
    code, out, err = cli(capsys, "compare", base, head, "--fail-above", "5")
    assert code == 1
    assert "1 case(s) regressed more than 5% and beyond their noise: x/y steady bs1 -10.0%" in err
    assert "git commit differs: aaa (" in err and "torch" not in err  # each environment difference named
    judged, invalid = out.split("INVALID (measured under contention")
    assert "REGRESSION" in judged and "within noise" in judged and "contended" not in judged
    assert "x/y contended bs1" in invalid and "REGRESSION" not in invalid
    # within noise and the threshold: passes; a threshold above the drop too
    assert cli(capsys, "compare", base, head, "--fail-above", "15")[0] == 0
    same = _report(tmp_path / "c.json", [_case("steady", 99.0, [98.0, 99.0, 100.0])], torch="2.11.0")
    code, out, err = cli(capsys, "compare", base, same, "--fail-above", "5")
    assert code == 0 and "torch differs: 2.13.0" in err


def test_a_series_and_the_same_numbers_in_md_csv_json(tmp_path, capsys):
    paths = [_report(tmp_path / f"{i}.json", [_case("sdpa", tps, [tps - 1, tps, tps + 1])])
             for i, tps in enumerate((40.0, 44.0, 50.0))]
    code, md, _ = cli(capsys, "compare", *paths)
    assert code == 0
    row = next(line for line in md.splitlines() if line.startswith("| x/y sdpa"))
    assert "40.0 ± 1.0 tokens/s" in row and "44.0 ± 1.0 tokens/s (1.10×)" in row and "(1.25×)" in row and "+25.0%" in row
    code, text, _ = cli(capsys, "compare", *paths, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [float(r["throughput_per_s"]) for r in rows] == [40.0, 44.0, 50.0] and {r["report"] for r in rows} == set(paths)
    assert float(rows[0]["change_last_vs_first"]) == pytest.approx(0.25) and rows[0]["throughput_sd"] == "1.0"
    code, text, _ = cli(capsys, "compare", *paths, "--format", "json")
    data = json.loads(text)
    (case,) = data["rows"]
    assert [r["throughput_per_s"] for r in case["reports"]] == [40.0, 44.0, 50.0] and case["change"] == pytest.approx(0.25)
    assert f"{100 * case['noise']:.1f}%" in md  # the noise the Markdown shows
    assert cli(capsys, "compare", paths[0])[0] == 2  # one report is no comparison
