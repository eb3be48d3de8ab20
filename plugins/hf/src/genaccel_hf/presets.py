"""hf/t-t's random-weight sizes (plain data, read at registration): every supported architecture at
the Llama presets' shapes, ``small`` being the CPU bench's (hidden 768, 12 layers, 12 heads, FFN
2048, vocabulary 32016); what else a config needs is its architecture's own default."""

PRESETS = {
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=512),
    "small": dict(hidden_size=768, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=12,
                  num_key_value_heads=12, vocab_size=32016),
}

#: The architecture of a preset (``--arch``), by ``model_type``.
DEFAULT_ARCH = "llama"
