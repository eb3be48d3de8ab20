"""The command line itself: declared options as real arguments, --version, renamed flags, the flags
each command takes, help on every argument, devices that cannot be timed.  No torch: parsing only,
or commands that fail before any work."""

from __future__ import annotations

import argparse

import pytest
from genaccel.api import DecoderSpec, Option, WorkloadSpec, hookimpl
from genaccel.cli import build_parser, main
from genaccel.plugin.manager import build_registry, make_plugin_manager
from genaccel.plugin.roles import AttentionRecord, Denoiser, TokenModel


def _noop(*a, **k):
    return None


class _Plugin:
    @hookimpl
    def genaccel_register_workloads(self, register):
        register(WorkloadSpec(name="toy/t-t", description="toy", build=_noop, presets=("tiny",), default_preset="tiny",
                              default_decoder="greedy", roles=(TokenModel,),
                              options=(Option("allow_missing_weights", bool, False, help="go on without them"),
                                       Option("src_lang", str, "eng", help="source language"))))
        register(WorkloadSpec(name="toy/x", description="toy", build=_noop, presets=("tiny",), default_preset="tiny",
                              default_decoder="greedy", roles=(TokenModel,),
                              options=(Option("src_lang", str, "eng", help="source language"),)))
        register(WorkloadSpec(name="toy/d", description="toy", build=_noop, presets=("tiny",), default_preset="tiny",
                              default_decoder="greedy", roles=(Denoiser,)))
        register(WorkloadSpec(name="toy/a", description="toy", build=_noop, presets=("tiny",), default_preset="tiny",
                              default_decoder="greedy", roles=(TokenModel, AttentionRecord)))

    @hookimpl
    def genaccel_register_decoders(self, register):
        register(DecoderSpec(name="picky", description="x", factory=_noop, requires=(TokenModel,),
                             options=(Option("sampler", str, choices=("ddim", "euler"), help="the sampler"),)))


@pytest.fixture
def registry(monkeypatch):
    pm = make_plugin_manager(load_entry_points=False)
    pm.register(_Plugin(), name="toy")
    reg = build_registry(pm)
    reg.versions.update({"genaccel": "1.2.3", "genaccel-toy": "0.4"})
    monkeypatch.setattr("genaccel.cli.app.default_registry", lambda: reg)
    return reg


def _parse(registry, *argv):
    args = build_parser(registry).parse_args(list(argv))
    from genaccel.cli.options import given_options

    return given_options(args)


def test_declared_options_are_arguments_grouped_by_who_declares_them(registry, capsys):
    assert _parse(registry, "run", "toy/t-t", "--src-lang", "fra", "--sampler=euler") == {
        "src_lang": "fra", "sampler": "euler"}
    assert _parse(registry, "run", "toy/t-t", "--allow-missing-weights") == {"allow_missing_weights": "true"}
    assert _parse(registry, "run", "toy/t-t", "--allow-missing-weights", "no") == {"allow_missing_weights": "no"}
    assert _parse(registry, "run", "toy/t-t") == {}  # an option not given is absent: its owner's default holds
    with pytest.raises(SystemExit):
        build_parser(registry).parse_args(["run", "toy/t-t", "--src-lang"])  # a value is needed
    with pytest.raises(SystemExit):
        build_parser(registry).parse_args(["list", "--src-lang", "fra"])  # only commands that run a workload
    capsys.readouterr()
    assert main(["run", "toy/t-t", "--src-lag", "fra"]) == 2
    assert capsys.readouterr().err.startswith("genaccel: error: unknown option '--src-lag' of genaccel run; "
                                              "did you mean '--src-lang'?")
    assert main(["list", "extra"]) == 2 and "takes no argument 'extra'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["ablate", "--help"])
    out = capsys.readouterr().out
    assert "options of workload toy/t-t, toy/x:\n  --src-lang TEXT" in out and "source language (default eng)" in out
    assert "options of workload toy/t-t:\n  --allow-missing-weights [BOOL]" in out
    assert "options of decoder picky:\n  --sampler {ddim,euler}" in out


def test_a_declared_option_the_run_does_not_take_is_a_one_line_error(registry, tmp_path, capsys):
    assert main(["run", "toy/t-t", "--sampler", "ddim", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err == ("genaccel: error: option --sampler is not taken by toy/t-t with decoder greedy: it belongs to "
                   "decoder picky\n")
    assert main(["run", "toy/t-t", "--decoder", "picky", "--sampler", "eular", "--out", str(tmp_path / "o")]) == 2
    assert "did you mean 'euler'" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_an_option_named_like_a_genaccel_flag_is_refused_at_load():
    class Clash:
        @hookimpl
        def genaccel_register_workloads(self, register):
            register(WorkloadSpec(name="toy/c", description="toy", build=_noop, presets=("tiny",),
                                  default_preset="tiny", default_decoder="greedy", options=(Option("seed", int),)))

    pm = make_plugin_manager(load_entry_points=False)
    pm.register(Clash(), name="clash")
    from genaccel.errors import GenaccelError

    with pytest.raises(GenaccelError, match="workload toy/c declares option --seed, which is one of genaccel's own"):
        build_parser(build_registry(pm))


def test_version_prints_the_core_and_every_plugin(registry, capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out == "genaccel 1.2.3\ngenaccel-toy 0.4\n"


def test_list_options_shows_what_a_workloads_runs_take(registry, capsys):
    assert main(["list", "--options", "toy/t-t"]) == 0
    out = capsys.readouterr().out
    assert "--src-lang" in out and "--allow-missing-weights" in out and "decoder picky" in out
    assert main(["list", "--options", "toy/d"]) == 0  # the guided decoders' options, not picky's (TokenModel)
    out = capsys.readouterr().out
    assert "--num-inference-steps" in out and "--sampler" not in out and "--src-lang" not in out
    assert main(["list", "--options", "toy/x", "--json"]) == 0
    assert '"--src-lang"' in capsys.readouterr().out
    assert main(["list", "--options", "toy/tt"]) == 2 and "did you mean 'toy/t-t'" in capsys.readouterr().err


def test_renamed_flags_keep_their_old_spelling_with_one_warning(registry, capsys):
    parser = build_parser(registry)
    args = parser.parse_args(["characterize-diffusion", "toy/d", "--steps", "3", "--steps", "4"])
    assert args.num_inference_steps == 4
    err = capsys.readouterr().err
    assert err.count("warning: --steps is deprecated here; use --num-inference-steps") == 1
    assert parser.parse_args(["characterize-diffusion", "toy/d", "--num-inference-steps", "5"]).num_inference_steps == 5
    args = parser.parse_args(["train-layerskip", "toy/t-t", "--steps", "7"])
    assert args.train_steps == 7 and "use --train-steps" in capsys.readouterr().err
    assert parser.parse_args(["train-layerskip", "toy/t-t", "--train-steps", "9"]).train_steps == 9


def test_generate_takes_only_the_flags_it_uses(registry, capsys):
    for flag in ("--samples", "--batch-size", "--warmup", "--seq-len", "--overwrite"):
        assert main(["generate", "toy/t-t", "--prompt", "x", flag, "1"]) == 2
        assert f"unknown option {flag!r} of genaccel generate" in capsys.readouterr().err


def _actions(parser, path=("genaccel",)):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _actions(sub, (*path, name))
        elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            yield path, action


def test_every_argument_of_every_command_has_help(registry):
    missing = [f"{' '.join(path)} {action.option_strings or action.dest}"
               for path, action in _actions(build_parser(registry)) if not action.help]
    assert not missing, missing


@pytest.mark.parametrize("argv", [["run", "toy/t-t", "--device", "mps"], ["bench", "b.toml", "--devices", "cpu,xpu"],
                                  ["characterize-diffusion", "toy/d", "--device", "mps"],
                                  ["train-layerskip", "toy/t-t", "--device", "xpu:1"]])
def test_a_device_that_cannot_be_timed_is_refused_by_the_parser(registry, argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    kind = argv[-1].split(",")[-1]
    assert e.value.code == 2
    assert f"device {kind!r} cannot be timed: genaccel times cpu and cuda devices" in capsys.readouterr().err


def test_a_bench_toml_device_that_cannot_be_timed_is_the_same_one_line_error(registry, tmp_path, capsys):
    cfg = tmp_path / "b.toml"
    cfg.write_text('[defaults]\ndevice = "mps"\n\n[[cases]]\nworkload = "toy/t-t"\n')
    assert main(["bench", str(cfg), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "device 'mps' cannot be timed: genaccel times cpu and cuda devices" in err


def test_characterize_study_refuses_an_existing_report_and_a_workload_without_an_attention_record(registry, tmp_path,
                                                                                                    capsys):
    out = tmp_path / "o"
    out.mkdir()
    (out / "characterization.json").write_text("{}")
    assert main(["characterize-diffusion", "toy/a", "--out", str(out)]) == 2  # the older name of the same command
    err = capsys.readouterr().err
    assert "already exists" in err and "--overwrite" in err and err.count("\n") == 1
    assert main(["characterize-study", "toy/t-t", "--out", str(tmp_path / "p")]) == 2
    assert "'toy/t-t' has no attention record" in capsys.readouterr().err and not (tmp_path / "p").exists()
