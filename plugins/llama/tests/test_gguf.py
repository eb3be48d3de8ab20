"""GGUF export of the run's own weights (skipped without the llamacpp extra): the file reads back
with gguf's reader with the right tensors, types and shapes; llama.cpp's greedy tokens on the f32
export equal genaccel's on the same prompt."""

import pytest
import torch
from genaccel.run.config import RunConfig
from genaccel.testing import prepared

gguf = pytest.importorskip("gguf")
from genaccel.models.gguf import FTYPES, cached_export, export  # noqa: E402


@pytest.fixture(scope="module")
def tiny(registry):
    return prepared(registry, RunConfig(workload="llama/t-t", preset="tiny", decoder="greedy"), apply=False).instance


@pytest.mark.parametrize("ftype", FTYPES)
def test_export_reads_back_with_the_right_tensors(tiny, tmp_path, ftype):
    cfg = tiny.module.config
    path = export(tiny.module, tiny.tokenizer, tmp_path / f"m-{ftype}.gguf", ftype)
    reader = gguf.GGUFReader(str(path))
    tensors = {t.name: t for t in reader.tensors}
    assert len(tensors) == 3 + 9 * cfg.num_hidden_layers
    kv_dim = cfg.num_key_value_heads * cfg.hidden_size // cfg.num_attention_heads
    want = {"token_embd.weight": (cfg.vocab_size, cfg.hidden_size), "output.weight": (cfg.vocab_size, cfg.hidden_size),
            "output_norm.weight": (cfg.hidden_size,), "blk.0.attn_k.weight": (kv_dim, cfg.hidden_size),
            "blk.1.ffn_down.weight": (cfg.hidden_size, cfg.intermediate_size)}
    for name, shape in want.items():  # GGUF lists dimensions innermost first
        assert tuple(int(d) for d in tensors[name].shape[::-1]) == shape, name
    qtype = {"f32": "F32", "f16": "F16", "bf16": "BF16", "q8_0": "Q8_0"}[ftype]
    assert tensors["blk.0.attn_q.weight"].tensor_type.name == qtype
    assert tensors["blk.0.attn_norm.weight"].tensor_type.name == "F32"
    fields = reader.fields
    assert fields["general.architecture"].contents() == "llama"
    assert fields["llama.block_count"].contents() == cfg.num_hidden_layers
    assert len(fields["tokenizer.ggml.tokens"].contents()) == cfg.vocab_size
    if ftype == "f32":  # the weights themselves, the embedding unpermuted
        emb = torch.from_numpy(tensors["token_embd.weight"].data.copy()).reshape(cfg.vocab_size, cfg.hidden_size)
        torch.testing.assert_close(emb, tiny.module.model.embed_tokens.weight.detach().float())


def test_cached_export_is_written_once(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("GENACCEL_CACHE", str(tmp_path))
    a = cached_export(tiny.module, tiny.tokenizer, "q8_0", "tiny-0")
    mtime = a.stat().st_mtime_ns
    assert cached_export(tiny.module, tiny.tokenizer, "q8_0", "tiny-0") == a and a.stat().st_mtime_ns == mtime


def test_llama_cpp_greedy_equals_ours_on_the_f32_export(tiny, tmp_path):
    llama_cpp = pytest.importorskip("llama_cpp")
    path = export(tiny.module, tiny.tokenizer, tmp_path / "m.gguf", "f32")
    prompt = tiny.tokenizer.encode("def fibonacci(n):\n    return", add_special_tokens=False)
    with torch.no_grad():
        ours = tiny.module.generate(torch.tensor([prompt]), max_new_tokens=16, do_sample=False, min_new_tokens=16)
    ours = ours[0, len(prompt):].tolist()
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=128, n_threads=2, verbose=False, logits_all=False)
    theirs = []
    llm.eval(prompt)
    for _ in range(16):
        token = int(llm.sample(top_k=1, temp=0.0))
        theirs.append(token)
        llm.eval([token])
    assert theirs == ours


def test_bench_case_takes_a_list_of_reference_engines(registry, tmp_path):
    from genaccel.api import GenaccelError
    from genaccel.run.bench_config import BenchConfig

    toml = tmp_path / "b.toml"
    toml.write_text('[[cases]]\nworkload = "llama/t-t"\npreset = "tiny"\nreference = ["transformers", "llama.cpp"]\n'
                    'gguf_type = "q8_0"\nstacks = [["sdpa"]]\n')
    (case,) = BenchConfig.from_toml(toml, registry).cases
    assert case.runs() == [((), "hf-generate"), ((), "llama-cpp"), (("sdpa",), None)]
    toml.write_text('[[cases]]\nworkload = "llama/t-t"\nreference = ["vllm"]\n')
    with pytest.raises(GenaccelError, match="reference must be"):
        BenchConfig.from_toml(toml, registry)


def test_llama_cpp_mbu_counts_the_bytes_of_its_own_export(registry, tmp_path, monkeypatch):
    """A q8_0 run reads about a quarter of the f32 export's weight bytes per step (MBU's numerator),
    never the module's float32 bytes; a q4_0 run (llama.cpp's own quantizer) about a seventh: its
    matrices in q4_0 blocks (18 bytes per 32 weights), the tiny LM head in q8_0 (llama.cpp's choice
    for 64 columns), so a little more."""
    pytest.importorskip("llama_cpp")
    from genaccel.testing import measure

    monkeypatch.setenv("GENACCEL_CACHE", str(tmp_path))
    per_step = {}
    for ftype in ("f32", "q8_0", "q4_0"):
        cfg = RunConfig(workload="llama/t-t", preset="tiny", decoder="llama-cpp", samples=1, seq_len=16,
                        max_new_tokens=8, warmup=0, options={"gguf_type": ftype})
        case = measure(registry, cfg)
        assert case.samples[0].output_tokens == 8
        per_step[ftype] = case.summary["bytes_per_decode_step"]
    assert 0.2 < per_step["q8_0"] / per_step["f32"] < 0.35
    assert 0.13 < per_step["q4_0"] / per_step["f32"] < 0.2
    (path,) = (tmp_path / "gguf").glob("*-q4_0.gguf")
    types = {t.name: t.tensor_type.name for t in gguf.GGUFReader(str(path)).tensors}
    assert types["blk.0.ffn_up.weight"] == types["blk.1.attn_q.weight"] == "Q4_0"


def test_q4_k_m_export_is_made_by_llama_cpp_quantizer(tiny, tmp_path, monkeypatch):
    """q4_K_M comes from the cached f32 export through llama.cpp's quantizer (the tiny model's 64
    columns are no multiple of 256: llama.cpp falls back to q5_0 and q8_0 blocks), once."""
    pytest.importorskip("llama_cpp")
    monkeypatch.setenv("GENACCEL_CACHE", str(tmp_path))
    path = cached_export(tiny.module, tiny.tokenizer, "q4_K_M", "tiny-0")
    assert len(list((tmp_path / "gguf").glob("*-f32.gguf"))) == 1
    types = {t.tensor_type.name for t in gguf.GGUFReader(str(path)).tensors}
    assert types <= {"F32", "Q5_0", "Q8_0"} and "Q5_0" in types
    with pytest.raises(ValueError, match="choose one of"):
        cached_export(tiny.module, tiny.tokenizer, "q3_K", "tiny-0")
