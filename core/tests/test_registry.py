import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
from genaccel.api import (
    BuildOptions,
    DecoderSpec,
    GenaccelError,
    OptimizationSpec,
    Option,
    WorkloadSpec,
    hookimpl,
    workload_hook,
)
from genaccel.plugin.manager import build_registry, make_plugin_manager
from genaccel.plugin.roles import AttentionSwitch, BeamSearch, CUDAGraphable, KVCacheSwitch, TokenModel
from genaccel.plugin.specs import Lazy


def _noop(*a, **k):
    return None


class ToyPlugin:
    @hookimpl
    def genaccel_register_workloads(self, register):
        register(WorkloadSpec(name="toy/t-t", description="toy", build=_noop, presets=("tiny",),
                              default_preset="tiny", default_decoder="greedy",
                              roles=(TokenModel, AttentionSwitch, KVCacheSwitch, CUDAGraphable)))
        register(WorkloadSpec(name="toy/nar", description="toy", build=_noop, presets=("tiny",),
                              default_preset="tiny", default_decoder="greedy", roles=(CUDAGraphable,)))

    @hookimpl
    def genaccel_register_optimizations(self, register):
        register(OptimizationSpec(name="my-quant", description="x", stage="weights", apply=_noop, lossless=False))


@pytest.fixture
def registry():
    pm = make_plugin_manager(load_entry_points=False)
    pm.register(ToyPlugin(), name="toy")
    return build_registry(pm)


def test_core_alone_registers_builtins_and_no_workloads():
    reg = build_registry(make_plugin_manager(load_entry_points=False))
    assert reg.workloads == {}
    assert {"greedy", "top-p"} <= set(reg.decoders)
    assert {"sdpa", "static-kv", "compile", "cuda-graph"} <= set(reg.optimizations)
    assert reg.optimization("sdpa").plugin == "genaccel.optimizations"


def test_plugin_registration_records_the_plugin(registry):
    assert registry.workload("toy/t-t").plugin == "toy"
    assert registry.optimization("my-quant").lossless is False


def test_unknown_names_list_what_exists_and_nearest(registry):
    with pytest.raises(GenaccelError, match=r"unknown workload 'toy/tt'; did you mean 'toy/t-t'\?.*known: toy/nar, toy/t-t"):
        registry.workload("toy/tt")
    with pytest.raises(GenaccelError, match=r"unknown optimization 'sdpa2'; did you mean 'sdpa'"):
        registry.optimization("sdpa2")
    with pytest.raises(GenaccelError, match=r"unknown decoder 'gredy'; did you mean 'greedy'"):
        registry.decoder("gredy")


def test_duplicate_names_fail_at_load(registry):
    with pytest.raises(GenaccelError, match=r"duplicate optimization 'sdpa'.*genaccel.optimizations.*'other'"):
        registry.add(OptimizationSpec(name="sdpa", description="x", stage="attention", apply=_noop), plugin="other")


def test_stack_is_sorted_by_stage(registry):
    stack = registry.resolve_stack(registry.workload("toy/t-t"), ["static-kv", "sdpa", "my-quant"], "cpu")
    assert stack.names == ("my-quant", "sdpa", "static-kv")
    assert stack.lossless is False


def test_impossible_stacks(registry):
    wl = registry.workload("toy/t-t")
    with pytest.raises(GenaccelError, match=r"'cuda-graph' needs static-kv.*--opt static-kv,cuda-graph"):
        registry.resolve_stack(wl, ["cuda-graph"], "cuda")
    with pytest.raises(GenaccelError, match="listed twice"):
        registry.resolve_stack(wl, ["sdpa", "sdpa"], "cpu")
    with pytest.raises(GenaccelError, match=r"'compile' cannot apply: workload toy/t-t does not play role Compilable \(compile\)"):
        registry.resolve_stack(wl, ["compile"], "cpu")


def test_missing_capability_is_a_skip_when_not_strict(registry):
    stack = registry.resolve_stack(registry.workload("toy/nar"), ["sdpa", "cuda-graph"], "cuda", strict=False)
    assert stack.names == ("cuda-graph",)  # static-kv does not apply to it, so it is not needed
    assert [s.name for s in stack.skipped] == ["sdpa"]


def test_missing_device_is_a_recorded_skip(registry):
    stack = registry.resolve_stack(registry.workload("toy/t-t"), ["static-kv", "cuda-graph"], "cpu")
    assert stack.names == ("static-kv",)
    assert stack.skipped[0].name == "cuda-graph" and "needs device cuda" in stack.skipped[0].reason


def test_decoder_needs_its_roles(registry):
    registry.add(DecoderSpec(name="toy-beam", description="x", factory=_noop, requires=BeamSearch))
    with pytest.raises(GenaccelError, match=r"decoder .toy-beam. needs role BeamSearch \(beam\).*decoders it can use: "
                                            r"greedy, top-p"):
        registry.check_decoder(registry.workload("toy/t-t"), "toy-beam")


def test_spec_validation():
    with pytest.raises(ValueError, match="workload name"):
        WorkloadSpec(name="NoSlash", description="", build=_noop, presets=("a",), default_preset="a", default_decoder="g")
    with pytest.raises(ValueError, match="default preset"):
        WorkloadSpec(name="a/b", description="", build=_noop, presets=("a",), default_preset="z", default_decoder="g")
    with pytest.raises(ValueError, match="stage"):
        OptimizationSpec(name="x", description="", stage="nowhere", apply=_noop)
    with pytest.raises(ValueError, match="devices"):
        OptimizationSpec(name="x", description="", stage="weights", apply=_noop, devices={"tpu"})


def test_workload_options_are_checked_against_what_the_workload_declares():
    spec = WorkloadSpec(name="a/b", description="", build=_noop, presets=("a",), default_preset="a",
                        default_decoder="g", options=(Option("src_lang", str, help="source language"),
                                                      Option("tgt_lang", str, help="target language")))
    spec.check_options({"src_lang": "eng"})
    with pytest.raises(GenaccelError, match=r"unknown option of a/b '--src-lng'; did you mean '--src-lang'"):
        spec.check_options({"src_lng": "eng"})
    bare = WorkloadSpec(name="a/c", description="", build=_noop, presets=("a",), default_preset="a", default_decoder="g")
    with pytest.raises(GenaccelError, match="workload a/c takes no option --src-lang"):
        bare.check_options({"src_lang": "eng"})


def test_options_parse_and_check_naming_the_flag():
    top_p = Option("top_p", float, 0.9, min=0, min_exclusive=True, max=1)
    assert top_p.flag == "--top-p" and top_p.parse("0.5") == 0.5 and top_p.check(1) == 1.0
    with pytest.raises(GenaccelError, match=r"--top-p takes a number, got 'x'"):
        top_p.parse("x")
    with pytest.raises(GenaccelError, match=r"--top-p must be > 0 and <= 1, got 0.0"):
        top_p.parse("0")
    sched = Option("scheduler", str, choices=("ddim", "euler"))
    with pytest.raises(GenaccelError, match=r"--scheduler must be one of ddim, euler, got 'eular'; did you mean 'euler'"):
        sched.parse("eular")
    assert Option("fast", bool).parse("yes") is True and Option("path", Path).check("/a") == Path("/a")
    with pytest.raises(GenaccelError, match="--steps takes an integer"):
        Option("steps", int).check(True)
    with pytest.raises(ValueError, match="option name"):
        Option("Top-P", float)


def test_run_options_come_from_the_workload_decoder_and_stack(registry):
    wl = registry.workload("toy/t-t")
    assert registry.check_run_options({"top_p": "0.5"}, wl, "top-p", ()) == {"top_p": 0.5}
    assert registry.check_run_options({"exit_layer": 2}, wl, None, ["layerskip"]) == {"exit_layer": 2}
    with pytest.raises(GenaccelError, match=r"--temperature is not taken by toy/t-t with decoder greedy: "
                                            r"it belongs to decoder top-p"):
        registry.check_run_options({"temperature": "1"}, wl, None, ())
    with pytest.raises(GenaccelError, match=r"unknown option of toy/t-t with decoder top-p '--top-pp'; did you mean '--top-p'"):
        registry.check_run_options({"top_pp": "1"}, wl, "top-p", ())
    with pytest.raises(GenaccelError, match=r"unknown option --tempreature; did you mean '--temperature' \(of decoder top-p"):
        registry.check_run_options({"tempreature": "1"}, wl, None, ())


def test_the_same_option_name_means_the_same_thing(registry):
    with pytest.raises(GenaccelError, match="declares option --top-p unlike decoder top-p does"):
        registry.add(DecoderSpec(name="other", description="x", factory=_noop, options=(Option("top_p", int),)))
    registry.add(DecoderSpec(name="other", description="x", factory=_noop,
                             options=(Option("top_p", float, 0.9, "worded otherwise", min=0, max=1, min_exclusive=True),)))


def test_import_strings_resolve_on_first_use_and_roles_give_capabilities():
    spec = WorkloadSpec(name="a/b", description="", build="os.path:join", presets=("a",), default_preset="a",
                        default_decoder="g", roles=(TokenModel, KVCacheSwitch, BeamSearch))
    assert isinstance(spec.build, Lazy) and spec.build("a", "b") == os.path.join("a", "b")
    assert spec.capabilities == ("autoregressive", "beam", "kv-cache") and spec.unit == "token"
    with pytest.raises(ValueError, match="import string"):
        DecoderSpec(name="x", description="", factory="not an import string")
    with pytest.raises(ValueError, match="roles must be Role classes"):
        DecoderSpec(name="x", description="", factory=_noop, requires="beam")  # a capability name is not a role


def test_workload_hook_registers_fixed_specs_in_order():
    specs = [WorkloadSpec(name=f"fixed/{task}", description="", build=_noop, presets=("tiny",), default_preset="tiny",
                          default_decoder="greedy") for task in ("b", "a")]
    hook = workload_hook(*specs)
    seen = []
    hook(seen.append)
    assert seen == specs
    pm = make_plugin_manager(load_entry_points=False)
    pm.register(types.SimpleNamespace(genaccel_register_workloads=hook), name="fixed")
    reg = build_registry(pm)
    assert {"fixed/a", "fixed/b"} <= set(reg.workloads) and reg.workload("fixed/a").plugin == "fixed"


def test_a_build_takes_the_named_preset_or_small_and_names_an_unknown_one():
    presets = {"tiny": {}, "small": {}}
    assert BuildOptions().preset_in(presets, "toy/t-t") == "small"
    assert BuildOptions(preset="tiny").preset_in(presets, "toy/t-t") == "tiny"
    with pytest.raises(GenaccelError, match=r"unknown preset of toy/t-t 'tiyn'; did you mean 'tiny'\?"):
        BuildOptions(preset="tiyn").preset_in(presets, "toy/t-t")


class _Commands:
    @hookimpl
    def genaccel_register_commands(self, register):
        register("hello", "say hello", lambda p: p.add_argument("--name", default="you"),
                 lambda args, registry: print(f"hello {args.name}") or 0)


def test_plugins_add_commands(capsys):
    from genaccel.cli import build_parser

    pm = make_plugin_manager(load_entry_points=False)
    pm.register(_Commands(), name="greeter")
    reg = build_registry(pm)
    assert reg.command("hello").plugin == "greeter" and "train-layerskip" in reg.commands
    args = build_parser(reg).parse_args(["hello", "--name", "x"])
    assert args.fn(args, reg) == 0 and capsys.readouterr().out == "hello x\n"


def test_the_command_line_starts_without_torch():
    """`genaccel list`, `--help` and an unknown name load every plugin's registration but no torch."""
    code = (
        "import sys\n"
        "from genaccel.cli import main\n"
        "assert main(['list']) == 0\n"
        "assert main(['run', 'nonexistent/x']) == 2\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'diffusers') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy())
    assert done.returncode == 0, done.stderr
    assert "unknown workload 'nonexistent/x'" in done.stderr


def test_an_error_line_takes_the_first_line_of_any_message():
    from genaccel.errors import first_line

    assert first_line(RuntimeError()) == ""  # a message-less exception (str(e) == "") has no first line
    assert first_line(RuntimeError("oom\ndetails")) == "oom"
    assert first_line(ValueError("x" * 300), 10) == "x" * 10
