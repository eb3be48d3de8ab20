"""genaccel plugin: Parti text-to-image (``parti/t-i``), the architecture of Yu et al. 2022 with random weights:
an encoder-decoder Transformer (transformers' M2M100 layers) that reads at most 128 text tokens and writes 1024
image tokens one at a time, under classifier-free guidance and top-k sampling, and a ViT-VQGAN that turns the
32x32 tokens into a 256x256 image.

The model code lives in ``presets``, ``model``, ``vitvqgan``, ``sampling``, ``tokenizer`` and ``build``; importing
this package imports none of it (no torch).
"""
