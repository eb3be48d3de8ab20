import pytest
from genaccel.api import GenaccelError
from genaccel.run.bench_config import BenchConfig

GOOD = """\
[defaults]
samples = 2
max_new_tokens = 8

[[cases]]
workload = "llama/t-t"
preset = "tiny"
batch_sizes = [1, 2]
stacks = [[], ["sdpa", "static-kv"]]
reference = true
"""


def _write(tmp_path, text):
    path = tmp_path / "bench.toml"
    path.write_text(text)
    return path


def test_good_config_expands_to_cases(tmp_path, registry):
    bench = BenchConfig.from_toml(_write(tmp_path, GOOD), registry)
    configs = bench.cases[0].configs()
    assert [(c.batch_size, c.decoder, c.optimizations) for c in configs] == [
        (1, "hf-generate", ()), (1, None, ()), (1, None, ("sdpa", "static-kv")),
        (2, "hf-generate", ()), (2, None, ()), (2, None, ("sdpa", "static-kv")),
    ]
    assert configs[0].samples == 2 and configs[0].preset == "tiny"


def test_malformed_toml_names_the_line(tmp_path, registry):
    with pytest.raises(GenaccelError, match=r"malformed TOML.*line 3"):
        BenchConfig.from_toml(_write(tmp_path, "[defaults]\nsamples = 2\nmax_new_tokens = = 8\n"), registry)


def test_misspelt_key_names_key_line_and_fix(tmp_path, registry):
    text = GOOD.replace("batch_sizes", "batch_size")
    with pytest.raises(GenaccelError, match=r"bench.toml:8: unknown key 'batch_size' in \[\[cases\]\] #1; did you mean 'batch_sizes'"):
        BenchConfig.from_toml(_write(tmp_path, text), registry)
    with pytest.raises(GenaccelError, match=r"bench.toml:2: unknown key 'sample' in \[defaults\]; did you mean 'samples'"):
        BenchConfig.from_toml(_write(tmp_path, GOOD.replace("samples = 2", "sample = 2")), registry)
    with pytest.raises(GenaccelError, match=r"unknown table 'case'; did you mean 'cases'"):
        BenchConfig.from_toml(_write(tmp_path, GOOD.replace("[[cases]]", "[[case]]")), registry)


def test_bad_values(tmp_path, registry):
    with pytest.raises(GenaccelError, match=r"bench.toml:8: batch_sizes must be"):
        BenchConfig.from_toml(_write(tmp_path, GOOD.replace("[1, 2]", "[0]")), registry)
    with pytest.raises(GenaccelError, match=r"bench.toml:2: bad value.*samples"):
        BenchConfig.from_toml(_write(tmp_path, GOOD.replace("samples = 2", "samples = 0")), registry)
    with pytest.raises(GenaccelError, match="does not exist"):
        BenchConfig.from_toml(tmp_path / "nope.toml", registry)
    with pytest.raises(GenaccelError, match="no \\[\\[cases\\]\\]"):
        BenchConfig.from_toml(_write(tmp_path, "[defaults]\nsamples = 1\n"), registry)


def _toy_registry():
    from genaccel.api import WorkloadSpec
    from genaccel.plugin.manager import build_registry, make_plugin_manager
    from genaccel.plugin.roles import TokenModel

    reg = build_registry(make_plugin_manager(load_entry_points=False))
    reg.add(WorkloadSpec(name="llama/t-t", description="", build="os.path:join", presets=("tiny",),
                         default_preset="tiny", default_decoder="greedy", roles=(TokenModel,)))
    return reg


def test_declared_options_are_keys_of_defaults_and_cases(tmp_path):
    text = GOOD.replace("samples = 2", "samples = 2\ntemperature = 0.7").replace(
        'reference = true', 'reference = false\ndecoder = "top-p"\ntop_p = 1')
    bench = BenchConfig.from_toml(_write(tmp_path, text), _toy_registry())
    config = bench.cases[0].configs()[0]
    assert config.decoder == "top-p" and config.options == {"temperature": 0.7, "top_p": 1.0}
    greedy = BenchConfig.from_toml(_write(tmp_path, GOOD.replace("samples = 2", "samples = 2\ntemperature = 0.7")),
                                   _toy_registry())
    assert greedy.cases[0].configs()[1].options == {}  # a default goes to the runs that take it


def test_misspelt_or_untaken_option_keys(tmp_path):
    reg = _toy_registry()
    with pytest.raises(GenaccelError, match=r"bench.toml:11: unknown key 'top_pp' in \[\[cases\]\] #1; did you mean 'top_p'"):
        BenchConfig.from_toml(_write(tmp_path, GOOD.replace("reference = true", "reference = true\ntop_pp = 1")), reg)
    with pytest.raises(GenaccelError, match=r"bench.toml:11: \[\[cases\]\] #1: option --top-p is not taken by llama/t-t"):
        BenchConfig.from_toml(_write(tmp_path, GOOD.replace("reference = true", "reference = true\ntop_p = 1")), reg)
    with pytest.raises(GenaccelError, match=r"bench.toml:12: bad value in \[\[cases\]\] #1: --top-p must be > 0 and <= 1"):
        BenchConfig.from_toml(_write(tmp_path, GOOD.replace("reference = true", 'reference = true\ndecoder = "top-p"\ntop_p = 2')), reg)


def test_a_case_in_rounds_alternates_its_runs_round_after_round(tmp_path, registry):
    """``rounds = 2``: every run of the case, then every run again (A B A B), each knowing its round."""
    bench = BenchConfig.from_toml(_write(tmp_path, GOOD.replace("[1, 2]", "[1]") + "rounds = 2\n"), registry)
    configs = bench.cases[0].configs()
    assert [(c.round, c.decoder, c.optimizations) for c in configs] == [
        (0, "hf-generate", ()), (0, None, ()), (0, None, ("sdpa", "static-kv")),
        (1, "hf-generate", ()), (1, None, ()), (1, None, ("sdpa", "static-kv")),
    ]
    assert configs[5].label == "sdpa+static-kv round 2" and configs[0].label == "transformers generate round 1"
    assert BenchConfig.from_toml(_write(tmp_path, GOOD), registry).cases[0].configs()[0].round is None
    for bad in ("0", "1.5", "true"):
        with pytest.raises(GenaccelError, match=r"bench.toml:\d+: rounds = .* must be a whole number >= 1"):
            BenchConfig.from_toml(_write(tmp_path, GOOD + f"rounds = {bad}\n"), registry)
