"""The built-in optimizations' apply functions (attention, caches, compile, graphs, layouts, step
cache, LayerSkip, quantization and autoquant).  Imports ``decoders`` and below."""
