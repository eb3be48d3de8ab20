"""The presets' architectures, built on the meta device (no memory, a second): the 1B preset has
Llama 3.2 1B's parameter count and shapes."""

import torch
from genaccel_llama.workload import preset_config
from transformers import LlamaForCausalLM


def test_1b_preset_has_llama_3_2_1b_size_and_shapes():
    config = preset_config("1b")
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    params = sum(p.numel() for p in model.parameters())  # the tied LM head counted once
    assert abs(params / 1.236e9 - 1) < 0.03, params
    assert model.lm_head.weight is model.model.embed_tokens.weight
    attn = model.model.layers[0].self_attn
    assert attn.q_proj.weight.shape == (2048, 2048) and attn.k_proj.weight.shape == (512, 2048)
    assert len(model.model.layers) == 16 and model.model.layers[0].mlp.up_proj.weight.shape == (8192, 2048)
    assert config.rope_parameters["rope_type"] == "llama3" and config.rope_parameters["rope_theta"] == 500000.0
