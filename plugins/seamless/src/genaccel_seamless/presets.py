"""SeamlessM4T v2's presets: tiny and small random-weight sizes of the real architecture, and
``large`` (transformers' default config: v2 large).  Plain data, read at registration."""

_SMALL_T2U = dict(t2u_encoder_layers=2, t2u_decoder_layers=2, t2u_encoder_ffn_dim=2048, t2u_decoder_ffn_dim=2048,
                  t2u_encoder_attention_heads=8, t2u_decoder_attention_heads=8, t2u_variance_predictor_embed_dim=512)
PRESETS = {
    "tiny": dict(hidden_size=64, encoder_layers=2, decoder_layers=2, encoder_ffn_dim=128, decoder_ffn_dim=128,
                 encoder_attention_heads=4, decoder_attention_heads=4, speech_encoder_layers=2,
                 speech_encoder_attention_heads=4, speech_encoder_intermediate_size=128, vocab_size=1024,
                 t2u_encoder_layers=1, t2u_decoder_layers=1, t2u_encoder_ffn_dim=128, t2u_decoder_ffn_dim=128,
                 t2u_encoder_attention_heads=4, t2u_decoder_attention_heads=4, t2u_vocab_size=128, char_vocab_size=256,
                 t2u_variance_predictor_embed_dim=64, t2u_variance_predictor_hidden_dim=32, unit_embed_dim=64,
                 upsample_initial_channel=32, lang_embed_dim=16, spkr_embed_dim=16, unit_hifi_gan_vocab_size=128),
    "small": dict(hidden_size=512, encoder_layers=6, decoder_layers=6, encoder_ffn_dim=2048, decoder_ffn_dim=2048,
                  encoder_attention_heads=8, decoder_attention_heads=8, speech_encoder_layers=6,
                  speech_encoder_attention_heads=8, speech_encoder_intermediate_size=2048, vocab_size=16384,
                  **_SMALL_T2U),
    "large": {},  # SeamlessM4T v2 large: 24+24 text layers, 24 speech encoder layers, hidden 1024, vocab 256102
}
