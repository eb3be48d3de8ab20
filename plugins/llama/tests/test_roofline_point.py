"""A tiny Llama's point on the study's roofline (Golden et al. 2024, Fig. 5): the FLOPs counted over one greedy
generation equal the closed form of its shapes (2 FLOPs per linear weight per token, the attention products), and
the intensity is those FLOPs over 4 bytes (float32) per parameter."""

import pytest
from genaccel.run import roofline
from genaccel.testing import RunConfig, first_batch
from genaccel_llama.presets import PRESETS

NEW = 4
ROOF = {"device": "test", "dtype": "float32", "peak_flops_per_s": 1e11, "bandwidth_bytes_per_s": 1e10,
        "ridge_flops_per_byte": 10.0}


def test_intensity_is_the_counted_flops_of_one_generation_per_parameter_byte(registry, monkeypatch):
    monkeypatch.setattr(roofline, "machine_roof", lambda device, dtype: ROOF)  # the roof is not under test
    config = RunConfig(workload="llama/t-t", preset="tiny", max_new_tokens=NEW, samples=1, batch_size=1)
    _, batch, _ = first_batch(registry, config)
    prompt = len(batch[0].input_ids)
    p = PRESETS["tiny"]
    h, layers, vocab = p["hidden_size"], p["num_hidden_layers"], p["vocab_size"]
    kv = p["num_key_value_heads"] * h // p["num_attention_heads"]
    per_layer = 2 * h * h + 2 * h * kv + 3 * h * p["intermediate_size"]  # q, o; k, v; gate, up, down
    fed = prompt + NEW - 1  # the prompt in prefill, then each new token but the last
    linear = 2 * layers * per_layer * fed + 2 * vocab * h * NEW  # the head: prefill's last position, then each step
    keys = prompt * prompt + sum(prompt + i for i in range(1, NEW))  # query × key positions over the generation
    attention = 2 * 2 * h * layers * keys  # Q·Kᵀ and P·V, every head
    parameters = 2 * vocab * h + layers * (per_layer + 2 * h) + h  # embeddings, head, layers with 2 norms, final norm
    point = roofline.roofline_point(registry, config)
    assert point["parameters"] == parameters and point["parameter_bytes"] == 4 * parameters
    assert point["flops"] == linear + attention  # the counter sees every matmul, nothing else
    assert point["intensity_flops_per_byte"] == pytest.approx((linear + attention) / (4 * parameters))
    assert point["bound"] == ("memory-bound" if point["intensity_flops_per_byte"] < 10 else "compute-bound")
    assert point["study"].startswith("memory-bound") and point["attained_flops_per_s"] > 0
