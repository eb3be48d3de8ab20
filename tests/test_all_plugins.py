"""The whole system with every installed plugin: each workload runs through the CLI."""

import json
from importlib import metadata

import pytest
from genaccel.cli import main
from genaccel.plugin.manager import default_registry
from genaccel.plugin.role import offers
from genaccel.plugin.roles import AttentionRecord, Denoiser

WORKLOADS = sorted(default_registry().workloads)


def test_every_installed_plugin_registers_something():
    reg = default_registry()
    providers = {s.plugin for table in (reg.workloads, reg.decoders, reg.optimizations) for s in table.values()}
    installed = {ep.name for ep in metadata.entry_points(group="genaccel")}
    assert installed <= providers, (installed, providers)
    models = installed & {"llama", "hstu", "seamless", "chameleon"}
    assert models <= {w.plugin for w in reg.workloads.values()}  # model plugins register workloads


@pytest.mark.parametrize("workload", WORKLOADS)
def test_workload_runs_on_its_tiny_preset(workload, tmp_path):
    spec = default_registry().workload(workload)
    preset = "tiny" if "tiny" in spec.presets else spec.default_preset
    out = tmp_path / "run"
    assert main(["run", workload, "--preset", preset, "--samples", "1", "--max-new-tokens", "4", "--seq-len", "64",
                 "--out", str(out)]) == 0
    doc = json.loads((out / "report.json").read_text())
    assert doc["workload"] == workload and doc["samples"] and doc["summary"]["latency_s"]["mean"] > 0


def test_one_bench_spans_every_plugin_and_records_what_does_not_apply(tmp_path):
    # one workload compiles (each plugin's own tests compile its models; here the stack composes beside
    # every other plugin's in one bench), the others run eager
    reg = default_registry()
    compiled = {"llama/t-t"} & set(WORKLOADS) or set(WORKLOADS[:1])
    stacks = {w: ["sdpa", "static-kv", "compile"] if w in compiled else ["sdpa", "static-kv"] for w in WORKLOADS}
    cases = "".join(f'[[cases]]\nworkload = "{w}"\nprofile = true\nstacks = [{json.dumps(stacks[w])}]\n\n'
                    for w in WORKLOADS)
    cfg = tmp_path / "bench.toml"
    cfg.write_text('[defaults]\npreset = "tiny"\nsamples = 1\nmax_new_tokens = 3\nseq_len = 48\n\n' + cases)
    assert main(["bench", str(cfg), "--out", str(tmp_path / "out")]) == 0
    doc = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [c["workload"] for c in doc["cases"]] == WORKLOADS
    assert all(c["status"] == "ok" for c in doc["cases"]), [c.get("error") for c in doc["cases"]]
    for c in doc["cases"]:  # what a workload lacks is a recorded skip with its reason, not an error
        spec = reg.workload(c["workload"])
        for s in c["skipped_optimizations"]:
            assert s["name"] in ("sdpa", "static-kv") and "does not play role" in s["reason"]
        assert set(c["optimizations"]) | {s["name"] for s in c["skipped_optimizations"]} == set(stacks[c["workload"]])
        assert ("compile" in c["optimizations"]) == (c["workload"] in compiled), spec.capabilities
    # every workload profiles, without plugin-specific code in the core
    assert [p["workload"] for p in doc["profiles"]] == WORKLOADS
    assert all(p["phases"] for p in doc["profiles"])
    assert "Where the time goes" in (tmp_path / "out" / "report.md").read_text()


def test_characterize_study_records_and_draws_every_attention_record(tmp_path):
    """Every workload that plays AttentionRecord through ``characterize-study`` on its tiny preset: a record of one
    period with calls of each kind it names, its roofline point, and Figs. 5, 8 and 9 as PNGs (the latent diffusion workloads, whose
    Conv and Attention profile adds Figs. 10-14, have their own test in test_diffusion_acceleration)."""
    reg = default_registry()
    recorded = [w for w in WORKLOADS if offers(reg.workload(w).roles, AttentionRecord)
                and not offers(reg.workload(w).roles, Denoiser)]
    assert {"parti/t-i", "phenaki/t-v", "muse/t-i", "llama/t-t"} <= set(recorded)
    out = tmp_path / "char"
    assert main(["characterize-study", *recorded, "--preset", "tiny", "--max-new-tokens", "4", "--out", str(out)]) == 0
    doc = json.loads((out / "characterization.json").read_text())
    assert [e["workload"] for e in doc["workloads"]] == recorded
    for e in doc["workloads"]:
        (rec,) = e["records"]
        assert rec["calls"] and set(rec["lengths"]) == {c["kind"] for c in rec["calls"]}, e["workload"]
        assert e["roofline"]["flops"] > 0 and e["roofline"]["parameter_bytes"] > 0, e["workload"]  # Fig. 5's point
    assert set(doc["figures"]) == {"fig8", "fig9", "fig5"}
    for name in doc["figures"].values():
        assert (out / name).stat().st_size > 1000 and (out / name).read_bytes()[:4] == b"\x89PNG"
    kinds = {e["workload"]: set(e["records"][0]["lengths"]) for e in doc["workloads"]}
    assert kinds["parti/t-i"] == {"self", "cross", "spatial"}
    assert kinds["phenaki/t-v"] == {"self", "cross", "spatial", "temporal"}
