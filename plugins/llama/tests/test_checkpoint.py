"""Real checkpoint loading, on a checkpoint the test saves itself."""

import json

import pytest
import torch
from genaccel.api import GenaccelError, train_bpe_tokenizer
from genaccel.cli import main
from genaccel.llm.decoding import pad_left
from genaccel.plugin.manager import default_registry
from genaccel.testing import RunConfig, prepared
from transformers import GenerationConfig

CORPUS = ["def add(a, b):\n    return a + b\n", "for i in range(10):\n    print(i * i)\n",
          "class Point:\n    def __init__(self, x, y):\n        self.x, self.y = x, y\n"] * 50


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """The tiny preset's weights with a tokenizer trained here, saved like a real checkpoint."""
    path = tmp_path_factory.mktemp("ckpt")
    ctx = prepared(default_registry(), RunConfig(workload="llama/t-t", preset="tiny", seed=3))
    tok = train_bpe_tokenizer(300, special_tokens=["<unk>", "<s>", "</s>"], name="test", corpus=CORPUS)
    tok.unk_token, tok.bos_token, tok.eos_token, tok.pad_token = "<unk>", "<s>", "</s>", "<unk>"
    ctx.instance.module.save_pretrained(path)
    tok.save_pretrained(path)
    return path, ctx.instance.module, tok


def test_checkpoint_reproduces_the_same_tokens(checkpoint, tmp_path):
    path, hf, tok = checkpoint
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "a.py").write_text("def add(a, b):\n")
    (prompts / "b.py").write_text("for i in range(10):\n    print(i)\n")
    ctx = prepared(default_registry(), RunConfig(workload="llama/t-t", checkpoint=str(path), data=str(prompts),
                                                optimizations=("sdpa", "static-kv")))
    assert ctx.instance.random_weights is False and ctx.instance.tokenizer.vocab_size == tok.vocab_size
    samples = ctx.instance.make_samples(2, seed=0, max_new_tokens=10)
    assert samples[0].input_ids == tuple([1] + tok.encode("def add(a, b):\n"))
    ctx.max_seq_len = 64
    ours = ctx.decoder.run(ctx, samples).outputs
    ids, valid = pad_left(samples, 0, "cpu")
    ref = hf.generate(input_ids=ids, attention_mask=valid.long(),
                      generation_config=GenerationConfig(max_new_tokens=10, do_sample=False, eos_token_id=2, pad_token_id=0))
    for row, out in enumerate(ours):
        expected = ref[row, ids.shape[1]:].tolist()
        if 2 in expected:
            expected = expected[: expected.index(2) + 1]
        assert out == expected


def test_generate_command_prints_text(checkpoint, capsys):
    path, _, _ = checkpoint
    assert main(["generate", "llama/t-t", "--checkpoint", str(path), "--prompt", "def add(a, b):",
                 "--max-new-tokens", "5"]) == 0
    assert capsys.readouterr().out.startswith("def add(a, b):")


@pytest.mark.parametrize(
    "breakage, message",
    [
        ("missing", "does not exist"),
        ("file", "is not a directory"),
        ("no-config", "has no config.json"),
        ("bad-json", "config.json' is not valid JSON"),
        ("wrong-type", "holds model_type 'bert'; this workload needs llama"),
        ("no-weights", r"has no \*.safetensors"),
        ("corrupt-weights", "cannot load the model"),
    ],
)
def test_broken_checkpoint_directories(checkpoint, tmp_path, breakage, message):
    import shutil

    src, _, _ = checkpoint
    bad = tmp_path / "bad"
    if breakage == "file":
        bad.write_text("x")
    elif breakage != "missing":
        shutil.copytree(src, bad)
        cfg = bad / "config.json"
        if breakage == "no-config":
            cfg.unlink()
        elif breakage == "bad-json":
            cfg.write_text("{")
        elif breakage == "wrong-type":
            cfg.write_text(json.dumps({**json.loads(cfg.read_text()), "model_type": "bert"}))
        elif breakage == "no-weights":
            for f in bad.glob("*.safetensors"):
                f.unlink()
        elif breakage == "corrupt-weights":
            for f in bad.glob("*.safetensors"):
                f.write_bytes(b"not a safetensors file")
    with pytest.raises(GenaccelError, match=message):
        prepared(default_registry(), RunConfig(workload="llama/t-t", checkpoint=str(bad)))


def test_weights_are_reproducible_from_the_seed():
    reg = default_registry()
    a = prepared(reg, RunConfig(workload="llama/t-t", preset="tiny", seed=1)).instance.module
    b = prepared(reg, RunConfig(workload="llama/t-t", preset="tiny", seed=1)).instance.module
    c = prepared(reg, RunConfig(workload="llama/t-t", preset="tiny", seed=2)).instance.module
    pa, pb, pc = (dict(m.named_parameters()) for m in (a, b, c))
    assert all(torch.equal(pa[k], pb[k]) for k in pa)
    assert not torch.equal(pa["lm_head.weight"], pc["lm_head.weight"])
