"""Code Llama's architectures (7B/34B as released, rope theta 1e6; the 70B shapes), Llama 3.2 1B's
(the 1B class llama.cpp is usually benchmarked on) and small random-weight sizes: the one table of
llama/t-t's presets (plain data, read at registration).  A preset's fields are ``LlamaConfig``'s,
over the Code Llama defaults of :func:`genaccel_llama.workload.preset_config`."""

#: Llama 3.2's rope: theta 500000 with Llama 3's frequency scaling (factor 32 over 8192 positions); the
#: GGUF export writes it as llama.cpp's ``rope_freqs.weight``, and llama.cpp's greedy tokens on such an
#: export equal transformers' (hf/t-t's llama3 test)
LLAMA32_ROPE = dict(rope_type="llama3", rope_theta=500000.0, factor=32.0, low_freq_factor=1.0, high_freq_factor=4.0,
                    original_max_position_embeddings=8192)

PRESETS = {
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=512),
    "small": dict(hidden_size=768, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=12,
                  num_key_value_heads=12, vocab_size=32016),
    "1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
               num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=True, rope_parameters=LLAMA32_ROPE,
               max_position_embeddings=131072),
    "7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
               num_key_value_heads=32, vocab_size=32016),
    "34b": dict(hidden_size=8192, intermediate_size=22016, num_hidden_layers=48, num_attention_heads=64,
                num_key_value_heads=8, vocab_size=32016),
    "70b": dict(hidden_size=8192, intermediate_size=28672, num_hidden_layers=80, num_attention_heads=64,
                num_key_value_heads=8, vocab_size=32016),
}
