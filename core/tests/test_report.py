import json

import pytest
from genaccel.api import GenaccelError
from genaccel.report.compare import compare
from genaccel.report.render import render
from genaccel.report.results import SCHEMA_VERSION
from genaccel.report.store import load, write_json
from genaccel.report.tables import rate


def _case(label, tps, lat, decoder="greedy"):
    return {
        "label": label, "status": "ok", "workload": "x/y", "preset": "tiny", "decoder": decoder, "batch_size": 1,
        "device": "cpu", "dtype": "float32", "skipped_optimizations": [], "optimization_notes": {},
        "samples": [{"latency_s": lat, "output_tokens": 4}, {"latency_s": lat * 1.1, "output_tokens": 4}],
        "unit": "token", "summary": {"latency_s": {"mean": lat, "p50": lat, "p90": lat}, "unit": "token",
                                     "throughput_per_s": tps, "output_tokens_per_s": tps, "mbu": 0.5, "mbu_p50": 0.6},
    }


def test_render_and_compare(tmp_path):
    doc = {"schema_version": SCHEMA_VERSION, "kind": "ablate", "environment": {}, "cases": [
        _case("transformers generate", 9.0, 1.0, decoder="hf-generate"), _case("baseline", 10.0, 1.0), _case("sdpa", 20.0, 0.5)]}
    md = render(doc, tmp_path).read_text()
    assert "| sdpa | 20.0 | 2.00× | 2.00× |" in md and "| 50% | 60% |" in md
    assert "vs transformers' generate on the same weights: **2.22×**" in md
    assert (tmp_path / "00-x-y-bs1-speedup.png").stat().st_size > 1000
    other = json.loads(json.dumps(doc))
    other["cases"][2]["summary"]["throughput_per_s"] = 30.0
    assert "1.50×" in compare(doc, other)


def test_sdpa_speedup_table_in_the_study_order(tmp_path):
    cases = []
    for workload in ("muse/t-i", "x/y", "chameleon/t-i", "parti/t-i", "llama/t-t"):
        for label, tps, stack in (("baseline", 10.0, []), ("sdpa", 12.0, ["sdpa"])):
            c = _case(label, tps, 1.0)
            c.update(workload=workload, optimizations=stack)
            cases.append(c)
    contended = _case("baseline", 1.0, 1.0)  # a contended baseline gives a row without a ratio
    contended.update(workload="phenaki/t-v", optimizations=[])
    contended["summary"]["contention"] = {"reasons": ["bandwidth probes far apart"]}
    cases += [contended, {**_case("sdpa", 12.0, 1.0), "workload": "phenaki/t-v", "optimizations": ["sdpa"]}]
    md = render({"schema_version": SCHEMA_VERSION, "kind": "bench", "environment": {}, "cases": cases}, tmp_path).read_text()
    table = md[md.index("## End-to-end SDPA speedup"):].split("\n## ")[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and ("×" in line or "INVALID" in line)]
    assert rows == ["| llama/t-t | tiny | 1 | cpu float32 | 1.20× | 1.52× (LLaMA) |",
                    "| muse/t-i | tiny | 1 | cpu float32 | 1.20× | 1.11× (Muse) |",
                    "| parti/t-i | tiny | 1 | cpu float32 | 1.20× | 1.17× (Parti) |",
                    "| phenaki/t-v | tiny | 1 | cpu float32 | INVALID (contended) | 1.15× (Phenaki) |",
                    "| x/y | tiny | 1 | cpu float32 | 1.20× | – |",
                    "| chameleon/t-i | tiny | 1 | cpu float32 | 1.20× | – |"]  # itself, no longer "Parti"


def test_time_by_phase_table(tmp_path):
    cases = [_case("baseline", 1.0, 1.0), _case("sdpa", 2.0, 0.5)]
    cases[0]["summary"]["phase_s"] = {"text encoder": 0.1, "stage I": 0.3, "stage II": 0.6}
    cases[1]["summary"]["phase_s"] = {"text encoder": 0.1, "stage I": 0.1, "stage II": 0.3}
    md = render({"schema_version": SCHEMA_VERSION, "kind": "ablate", "environment": {}, "cases": cases}, tmp_path).read_text()
    assert "| stack | text encoder s (share) | stage I s (share) | stage II s (share) |" in md
    assert "| baseline | 0.100 (10%) | 0.300 (30%) | 0.600 (60%) |" in md
    assert "| sdpa | 0.100 (20%) | 0.100 (20%) | 0.300 (60%) |" in md


def test_write_is_atomic_and_load_checks_schema(tmp_path):
    path = tmp_path / "r.json"
    write_json(path, {"schema_version": 99})
    assert not (tmp_path / "r.json.tmp").exists()
    with pytest.raises(GenaccelError, match="schema_version 99, expected 1"):
        load(path)
    path.write_text("{oops")
    with pytest.raises(GenaccelError, match="not valid JSON"):
        load(path)


def test_sweep_table_and_plot(tmp_path):
    cases = []
    for n, lat_a, lat_b in ((1024, 0.1, 0.05), (4096, 1.0, 0.2)):
        for label, lat, mem in (("baseline", lat_a, 400 * 2**20), ("fused", lat_b, 20 * 2**20)):
            c = _case(label, 1.0, lat)
            c["seq_len"] = n
            c["summary"]["peak_memory_increase_bytes"] = mem
            cases.append(c)
    md = render({"schema_version": SCHEMA_VERSION, "kind": "bench", "environment": {}, "cases": cases}, tmp_path).read_text()
    assert "| 4096 | fused | 0.200 | 5.00× | 20 | 20.0× |" in md
    assert list(tmp_path.glob("sweep-*.png"))


FIXTURES = __import__("pathlib").Path(__file__).parent / "fixtures"


def _validate(doc):
    jsonschema = pytest.importorskip("jsonschema")
    from genaccel.report.results import schema

    jsonschema.validate(doc, schema())


def test_version_1_reports_are_read_through_the_upgrade(tmp_path):
    from genaccel.report.results import load_doc

    run, ablate = load(FIXTURES / "report-v1.json"), load(FIXTURES / "report-v1-ablate.json")
    assert run["schema_version"] == SCHEMA_VERSION == 2 and run["unit"] == "token"
    s = run["summary"]
    assert s["throughput_per_s"] == s["output_tokens_per_s"] > 0 and s["units"] == s["output_tokens"] == 8
    assert [r["units"] for r in run["samples"]] == [4, 4]
    _validate(run)
    _validate(ablate)
    same = compare(run, run)
    assert "1.00×" in same and "+0.0%" in same and "2.00×" not in same
    assert "baseline" in compare(load(FIXTURES / "report-v1-ablate.json"), ablate)
    # a version-1 report against a version-2 one: the same case matches, throughput in the same unit
    v2 = load_doc(run).to_dict()
    v2["summary"]["throughput_per_s"] *= 2
    assert "2.00×" in compare(json.loads((FIXTURES / "report-v1.json").read_text()), v2)
    md = render(ablate, tmp_path).read_text()
    assert "| hstu-fused-attention |" in md and "tokens/s" in md


def test_typed_results_round_trip_and_validate():
    from genaccel.report.results import CaseResult, ReportDoc, SampleRecord, case_label, load_doc

    sample = SampleRecord.from_decoder({"id": "a", "latency_s": 0.5, "output_tokens": 3, "files": ["x.png"]},
                                       unit="image", batch=0, output=[1, 2])
    assert sample.units == 1 and sample.extra == {"files": ["x.png"]}
    assert SampleRecord.from_decoder({"id": "b", "latency_s": 1.0, "output_tokens": 3}, unit="token", batch=0).units == 3
    assert SampleRecord.from_decoder({"id": "c", "latency_s": 1.0, "units": 7}, unit="item", batch=0).units == 7
    summary = {"unit": "image", "units": 1, "throughput_per_s": 2.0, "latency_s": {"mean": 0.5}, "total_s": 0.5,
               "phase_s": {}, "peak_memory_bytes": 1, "model_bytes": 1, "ttft_s": None, "output_tokens_per_s": None,
               "decode_tokens_per_s": None, "mbu": None}
    ok = CaseResult(label=case_label(["b", "a"], skipped=["c"]), workload="x/y", unit="image", batch_size=1,
                    device="cpu", dtype="float32", optimizations=["b", "a"], samples=[sample], summary=summary)
    assert ok.label == "b+a (skipped c)" and case_label([], decoder="hf-generate") == "transformers generate"
    assert case_label(["b", "a"], skipped=["c"], tp=2) == "b+a tp2 (skipped c)" and case_label([], tp=1) == "baseline"
    skipped = CaseResult(label="-", status="skipped", error="no plugin", workload="z/w")
    doc = ReportDoc(kind="bench", config={}, cases=[ok, skipped])
    data = json.loads(json.dumps(doc.to_dict()))
    _validate(data)
    assert data["cases"][0]["samples"][0]["files"] == ["x.png"]
    assert load_doc(data) == doc
    run = ReportDoc(kind="run", cases=[ok]).to_dict()
    assert run["label"] == ok.label and "cases" not in run
    _validate(run)
    assert load_doc(run).cases == [ok]
    with pytest.raises(ValueError):
        CaseResult(label="x", status="crashed", workload="x/y")


def test_slow_throughputs_keep_their_digits():
    assert [rate(x) for x in (0.0275, 4.25, 1419.23, None)] == ["0.0275", "4.25", "1419.2", "–"]
