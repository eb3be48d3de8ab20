import json

import pytest
from genaccel import GenaccelError
from genaccel.report import SCHEMA_VERSION, compare, load, render, write_json


def _case(label, tps, lat, decoder="greedy"):
    return {
        "label": label, "status": "ok", "workload": "x/y", "preset": "tiny", "decoder": decoder, "batch_size": 1,
        "device": "cpu", "dtype": "float32", "skipped_optimizations": [], "optimization_notes": {},
        "samples": [{"latency_s": lat, "output_tokens": 4}, {"latency_s": lat * 1.1, "output_tokens": 4}],
        "summary": {"latency_s": {"mean": lat, "p50": lat, "p90": lat}, "output_tokens_per_s": tps, "mbu": 0.5, "mbu_p50": 0.6},
    }


def test_render_and_compare(tmp_path):
    doc = {"schema_version": SCHEMA_VERSION, "kind": "ablate", "environment": {}, "cases": [
        _case("transformers generate", 9.0, 1.0, decoder="hf-generate"), _case("baseline", 10.0, 1.0), _case("sdpa", 20.0, 0.5)]}
    md = render(doc, tmp_path).read_text()
    assert "| sdpa | 20.0 | 2.00× | 2.00× |" in md and "| 50% | 60% |" in md
    assert "vs transformers' generate on the same weights: **2.22×**" in md
    assert (tmp_path / "00-x-y-bs1-speedup.png").stat().st_size > 1000
    other = json.loads(json.dumps(doc))
    other["cases"][2]["summary"]["output_tokens_per_s"] = 30.0
    assert "1.50×" in compare(doc, other)


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
