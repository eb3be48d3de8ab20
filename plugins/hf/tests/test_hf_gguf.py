"""GGUF export of every architecture llama.cpp's converter takes (skipped without the llamacpp extra):
gguf's name map for the architecture names every weight, with llama.cpp's conventions (Gemma's norms
shifted by one, Phi-3's fused projections kept fused, Llama 3's rope factors, the windows and soft-caps
as keys); a model llama.cpp would run differently is refused with its reason; llama.cpp's greedy tokens
equal transformers' where llama-cpp-python is installed."""

import pytest
import torch
from genaccel.testing import RunConfig, prepared
from tiny_models import ARCHS

gguf = pytest.importorskip("gguf")
from genaccel.models.gguf import GGUF, export, unsupported  # noqa: E402


def _instance(registry, path):
    return prepared(registry, RunConfig(workload="hf/t-t", checkpoint=str(path)), apply=False).instance


@pytest.mark.parametrize("arch", list(ARCHS))
def test_export_names_every_weight_as_llama_cpp_reads_it(registry, folder, tmp_path, arch):
    inst = _instance(registry, folder(arch))
    hf, cfg = inst.module, inst.module.config
    reader = gguf.GGUFReader(str(export(hf, inst.tokenizer, tmp_path / "m.gguf", "f32")))
    tensors = {t.name: torch.from_numpy(t.data.copy()) for t in reader.tensors}
    spec = GGUF[cfg.model_type]
    assert reader.fields["general.architecture"].contents() == spec.name
    weights = {n for n in hf.state_dict() if "rotary" not in n} - ({"lm_head.weight"} if not spec.output else set())
    extra = {"rope_freqs.weight"} if arch == "llama3" else set()
    assert len(tensors) == len(weights | {"lm_head.weight"} if spec.output else weights) + len(extra)
    norm = tensors["output_norm.weight"]
    torch.testing.assert_close(norm, hf.model.norm.weight.detach() + spec.norm_shift)
    if arch == "phi3":
        assert tensors["blk.0.attn_qkv.weight"].shape == hf.model.layers[0].self_attn.qkv_proj.weight.shape
        assert reader.fields["phi3.attention.sliding_window"].contents() == 8
    if arch == "gemma2":
        assert reader.fields["gemma2.attn_logit_softcapping"].contents() == pytest.approx(1.0)
        assert reader.fields["gemma2.final_logit_softcapping"].contents() == pytest.approx(5.0)
    if arch == "llama3":  # each default frequency's divisor: 1 (high frequencies) up to the factor 8
        factors = tensors["rope_freqs.weight"]
        assert factors.shape == (cfg.head_dim // 2,) and factors.min() == 1 and factors.max() == pytest.approx(8.0)


def test_what_llama_cpp_would_run_differently_is_refused_with_its_reason(registry, folder):
    mistral = _instance(registry, folder("mistral")).module.config
    assert "no sliding window" in unsupported(mistral, 64) and unsupported(mistral, 8) is None
    assert unsupported(_instance(registry, folder("phi3")).module.config, 64) is None  # phi3's GGUF carries it
    assert unsupported(_instance(registry, folder("gemma2")).module.config, 64) is None


@pytest.mark.parametrize("arch", ["llama", "llama3", "qwen2", "qwen3", "gemma", "gemma2", "phi3"])
def test_llama_cpp_greedy_equals_transformers_on_the_f32_export(registry, folder, tmp_path, arch):
    llama_cpp = pytest.importorskip("llama_cpp")
    inst = _instance(registry, folder(arch))
    prompt = inst.encode("def fibonacci(n):\n    return")
    with torch.no_grad():
        ours = inst.module.generate(torch.tensor([prompt]), max_new_tokens=8, min_new_tokens=8, do_sample=False)
    llm = llama_cpp.Llama(model_path=str(export(inst.module, inst.tokenizer, tmp_path / "m.gguf", "f32")), n_ctx=64,
                          n_threads=2, verbose=False)
    theirs = []
    llm.eval(prompt)
    for _ in range(8):
        theirs.append(int(llm.sample(top_k=1, temp=0.0)))
        llm.eval([theirs[-1]])
    assert theirs == ours[0, len(prompt):].tolist()
