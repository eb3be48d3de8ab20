"""The built-in decoders (greedy, top-p, beam, hf-generate, llama-cpp, nar, self-speculative, cfg,
diffusers-pipeline): thin drivers of the loops in ``llm`` and ``diffusion``.  Imports those and below."""
