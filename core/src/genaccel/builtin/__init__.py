"""Decoders and optimizations that are not model-specific; registered like any plugin."""
