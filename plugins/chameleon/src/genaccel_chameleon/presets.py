"""Chameleon's language models (7B and 34B as released; 34B normalizes after attention and MLP,
"swin norm") and small random-weight sizes, and their image tokenizers: the release's VQGAN for every
size but tiny (512×512 pixels, 8192 codes on a 32×32 grid).  Plain data, read at registration."""

PRESETS = {
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=4, vocab_size=1024),
    "small": dict(hidden_size=512, intermediate_size=1408, num_hidden_layers=8, num_attention_heads=8,
                  num_key_value_heads=8, vocab_size=16384),
    "7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
               num_key_value_heads=32, vocab_size=65536),
    "34b": dict(hidden_size=8192, intermediate_size=22016, num_hidden_layers=48, num_attention_heads=64,
                num_key_value_heads=8, vocab_size=65536, swin_norm=True),
}
RELEASE_VQGAN = dict(embed_dim=256, num_embeddings=8192, latent_channels=256, resolution=512, base_channels=128,
                     channel_multiplier=[1, 1, 2, 2, 4], num_res_blocks=2)
TINY_VQGAN = dict(embed_dim=32, num_embeddings=256, latent_channels=32, resolution=64, base_channels=32,
                  channel_multiplier=[1, 2, 2], num_res_blocks=1)  # 16×16 grid: 256 tokens per image
