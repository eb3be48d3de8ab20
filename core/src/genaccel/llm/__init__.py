"""The token path: the step protocol of decoder-only and encoder-decoder LMs, KV caches, decode
attention and GEMV, the decode frame and its loops (greedy, top-p, beam, guidance, self-speculative)
and LayerSkip training.  Imports ``models`` and below; never a decoder, a run or the CLI."""
