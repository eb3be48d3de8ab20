"""hf/t-t's inputs: a checkpoint folder of a supported architecture, a Hub id found in the local Hugging
Face cache only (never the network), presets built on the meta device with what such a build loses
restored; bad input is one line and exit 2."""

import json
import shutil
import socket

import genaccel_hf
import pytest
import torch
from genaccel.testing import RunConfig, cli, prepared, registry_with


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """The CLI with hf/t-t registered, a Hugging Face cache of its own, and no network at all."""
    monkeypatch.setattr("genaccel.cli.app.default_registry", lambda: registry_with(genaccel_hf))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))

    def refuse(*args, **kwargs):
        raise AssertionError("a network connection was attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    return tmp_path / "hub"


def _cache(hub, repo: str, folder) -> None:
    """``folder`` as the cached snapshot of ``repo``, laid out as huggingface_hub's downloads are."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    root = hub / f"models--{repo.replace('/', '--')}"
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(commit)
    shutil.copytree(folder, root / "snapshots" / commit)


def test_a_hub_id_runs_from_the_local_cache(offline, capsys, folder, prompts, tmp_path):
    _cache(offline, "acme/tiny-qwen2", folder("qwen2"))
    code, _, err = cli(capsys, "run", "hf/t-t", "--checkpoint", "acme/tiny-qwen2", "--data", str(prompts),
                       "--samples", "1", "--max-new-tokens", "3", "--warmup", "0", "--out", str(tmp_path / "run"))
    assert code == 0, err
    model = json.loads((tmp_path / "run" / "report.json").read_text())["model"]
    assert model["architecture"] == "qwen2" and model["checkpoint"] == "acme/tiny-qwen2"


def test_a_hub_id_missing_from_the_cache_is_one_line(offline, capsys, tmp_path):
    code, _, err = cli(capsys, "run", "hf/t-t", "--checkpoint", "Qwen/Qwen2.5-0.5B", "--out", str(tmp_path / "run"))
    assert code == 2
    (line,) = err.strip().splitlines()
    assert "Qwen/Qwen2.5-0.5B" in line and str(offline) in line and "hf download Qwen/Qwen2.5-0.5B" in line


def test_an_unsupported_architecture_is_one_line_naming_the_supported(offline, capsys, folder, tmp_path):
    path = shutil.copytree(folder("llama"), tmp_path / "gpt2")
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**config, "model_type": "gpt2"}))
    capsys.readouterr()  # saving the folder's progress bars
    code, _, err = cli(capsys, "run", "hf/t-t", "--checkpoint", str(path), "--out", str(tmp_path / "run"))
    assert code == 2
    (line,) = err.strip().splitlines()
    assert "'gpt2'" in line and all(t in line for t in ("llama", "mistral", "qwen2", "qwen3", "gemma2", "phi3"))


def test_arch_is_for_presets(offline, capsys, folder, tmp_path):
    path = folder("llama")
    capsys.readouterr()  # saving the folder's progress bars
    code, _, err = cli(capsys, "run", "hf/t-t", "--checkpoint", str(path), "--arch", "mistral",
                       "--out", str(tmp_path / "run"))
    assert code == 2 and "--arch" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("arch,neutral", [("llama", 1.0), ("gemma", 0.0), ("gemma2", 0.0), ("phi3", 1.0)])
def test_presets_build_on_meta_with_neutral_norms_and_their_buffers(registry, arch, neutral):
    """A preset is built on the meta device: norms start at the architecture's identity (Gemma's
    ``x * (1 + w)``: w = 0) and Gemma's embedding scale, a buffer, is restored (sqrt of the hidden size)."""
    inst = prepared(registry, RunConfig(workload="hf/t-t", preset="tiny", options={"arch": arch}), apply=False).instance
    hf = inst.module
    assert hf.config.model_type == arch and inst.random_weights is True
    norms = [m.weight for n, m in hf.named_modules() if n.endswith("norm")]
    assert norms and all(bool((w == neutral).all()) for w in norms)
    if arch.startswith("gemma"):
        assert hf.model.embed_tokens.embed_scale.item() == pytest.approx(hf.config.hidden_size**0.5)
    fresh = type(hf.model.rotary_emb)(config=hf.config)
    torch.testing.assert_close(hf.model.rotary_emb.inv_freq, fresh.inv_freq)
