"""KV caches that Hugging Face attention modules write through ``update(k, v, layer_idx)``.

``DynamicKVCache`` is the paper's baseline: it grows by concatenation, so every step makes new
tensors.  ``StaticKVCache`` is allocated once, (B, H_kv, S_max, D) per layer, and written in
place at device-side positions, so addresses and shapes never change (what compile and CUDA
graphs need).  Both reorder for beam search: the dynamic one with ``index_select`` (new
tensors), the static one in place (``copy_`` of ``index_select``, same addresses).
"""

from __future__ import annotations

import torch

from .profiling import region


class DynamicKVCache:
    kind = "dynamic"

    def __init__(self, num_layers: int):
        self.keys: list[torch.Tensor | None] = [None] * num_layers
        self.values: list[torch.Tensor | None] = [None] * num_layers

    def update(self, key: torch.Tensor, value: torch.Tensor, layer_idx: int, *args, **kwargs):
        with region("KV-cache update", f"dynamic.{layer_idx}"):
            if self.keys[layer_idx] is None:
                self.keys[layer_idx], self.values[layer_idx] = key, value
            else:
                self.keys[layer_idx] = torch.cat([self.keys[layer_idx], key], dim=2)
                self.values[layer_idx] = torch.cat([self.values[layer_idx], value], dim=2)
            return self.keys[layer_idx], self.values[layer_idx]

    def reorder(self, index: torch.Tensor, length: int | None = None) -> None:
        with region("KV-cache reorder", "dynamic"):
            for i, (k, v) in enumerate(zip(self.keys, self.values)):
                if k is not None:
                    self.keys[i], self.values[i] = k.index_select(0, index), v.index_select(0, index)

    def crop(self, length: int) -> None:
        for i, (k, v) in enumerate(zip(self.keys, self.values)):
            if k is not None:
                self.keys[i], self.values[i] = k[:, :, :length], v[:, :, :length]


class StaticKVCache:
    kind = "static"

    def __init__(self, num_layers, batch_size, num_kv_heads, max_seq_len, head_dim, *, dtype, device):
        shape = (batch_size, num_kv_heads, max_seq_len, head_dim)
        self.keys = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(num_layers)]
        self.values = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(num_layers)]
        self.batch_size, self.max_seq_len = batch_size, max_seq_len
        # Positions written by the next forward and how many positions it reads (None: all);
        # set by the model before each call through ``target``.
        self.write_pos = torch.zeros(1, dtype=torch.long, device=device)
        self.read_window: torch.Tensor | None = None

    def target(self, write_pos: torch.Tensor, window: torch.Tensor | None = None) -> None:
        """The next forward writes at ``write_pos`` and attends to the first ``len(window)``
        positions (all when None).  The window is a tensor so that a compiled step can keep its
        length symbolic: one graph for every length."""
        self.write_pos, self.read_window = write_pos, window

    def mark_static(self) -> None:
        """Tell torch.compile that the buffers keep their addresses (for CUDA graphs)."""
        for t in (*self.keys, *self.values):
            torch._dynamo.mark_static_address(t)

    def update(self, key: torch.Tensor, value: torch.Tensor, layer_idx: int, *args, **kwargs):
        k_buf, v_buf = self.keys[layer_idx], self.values[layer_idx]
        with region("KV-cache update", f"static.{layer_idx}"):
            k_buf.index_copy_(2, self.write_pos, key)
            v_buf.index_copy_(2, self.write_pos, value)
        if self.read_window is not None:
            n = self.read_window.shape[0]
            return k_buf[:, :, :n], v_buf[:, :, :n]
        return k_buf, v_buf

    def reorder(self, index: torch.Tensor, length: int | None = None) -> None:
        """Rows follow ``index``, in place; only the first ``length`` positions when given (the rest
        are masked and will be overwritten)."""
        with region("KV-cache reorder", "static"):
            for buf in (*self.keys, *self.values):
                filled = buf if length is None else buf[:, :, :length]
                filled.copy_(filled.index_select(0, index))

    def crop(self, length: int) -> None:
        """Nothing to free: positions past ``length`` are masked and later overwritten."""
