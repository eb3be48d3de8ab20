"""The built-in decoders (greedy, top-p, beam, hf-generate, nar, self-speculative, cfg,
diffusers-pipeline): thin drivers of the loops in ``llm`` and ``diffusion``.  Imports those and below."""
