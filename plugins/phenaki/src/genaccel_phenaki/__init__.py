"""genaccel plugin: Phenaki text-to-video (``phenaki/t-v``), the architecture of Villegas et al. 2022 with random
weights: a C-ViViT video tokenizer (a spatial then a causal temporal transformer over space-time patches, factorized
VQ codes), a bidirectional MaskGIT transformer over the video tokens with cross-attention to T5 text embeddings,
filled in by parallel decoding (cosine masking schedule, confidence re-masking, classifier-free guidance).

The model code lives in ``cvivit``, ``maskgit``, ``parallel``, ``config``, ``presets`` and ``build``; importing
this package imports none of it (no torch).
"""
