"""KV caches that Hugging Face attention modules write through ``update(k, v, layer_idx)``, and
the bookkeeping of which cached keys a query may see.

``DynamicKVCache`` is the paper's baseline: it grows by concatenation, so every step makes new
tensors.  ``StaticKVCache`` is allocated once, (B, H_kv, S_max, D) per layer, and written in
place at device-side positions, so addresses and shapes never change (what compile and CUDA
graphs need).  Both reorder for beam search: the dynamic one with ``index_select`` (new
tensors), the static one in place (``copy_`` of ``index_select``, same addresses).

Prompts are left-padded.  Each cache keeps ``n_pad`` (B,), the padding of each row, and the
validity of its keys; it builds the boolean masks (True: may attend) of its own kind:

- ``start(valid)``: a prompt's causal mask over its valid positions (prefill);
- ``span(pos, n, layer=, window=)``: the positions and mask of ``n`` new positions (the static
  cache at ``pos``, reading ``window``; the dynamic one after layer ``layer``'s cached keys);
- ``DynamicKVCache.step_mask()``: a plain decode step's mask (None when no row is padded).

Sliding windows narrow these masks per layer (:meth:`genaccel.llm.causal_lm.HFCausalLM._masks`).
"""

from __future__ import annotations

import torch
from torch import nn

from ..engine.profiling import region


def prompt_mask(valid: torch.Tensor) -> torch.Tensor:
    """(B, 1, L, L): each prompt position sees the valid positions up to itself."""
    rows = torch.arange(valid.shape[1], device=valid.device)
    return ((rows[None, :] <= rows[:, None])[None] & valid[:, None, :])[:, None]


class DynamicKVCache:
    kind = "dynamic"

    def __init__(self, num_layers: int):
        self.keys: list[torch.Tensor | None] = [None] * num_layers
        self.values: list[torch.Tensor | None] = [None] * num_layers
        self.key_valid: torch.Tensor | None = None  # (B, cached): prompt validity, then True per step
        self.n_pad: torch.Tensor | None = None
        self.prompt_len, self.has_pad = 0, False

    def start(self, valid: torch.Tensor) -> torch.Tensor:
        """A new prompt (B, L) of validity ``valid``: empty the cache, return the prefill mask."""
        self.keys, self.values = [None] * len(self.keys), [None] * len(self.values)
        self.n_pad = valid.shape[1] - valid.sum(-1)
        self.key_valid, self.prompt_len = valid, valid.shape[1]
        self.has_pad = not bool(valid.all())
        return prompt_mask(valid)

    def step_mask(self, always: bool = False) -> torch.Tensor | None:
        """A one-token step's mask (B, 1, 1, cached + 1); without padding None (the cache grows by
        one: every cached key is visible) unless ``always`` (a sliding window narrows it)."""
        if not self.has_pad:
            if not always:
                return None
            return self.key_valid.new_ones(self.key_valid.shape[0], 1, 1, self.keys[0].shape[2] + 1)
        self.key_valid = torch.cat([self.key_valid, self.key_valid.new_ones(self.key_valid.shape[0], 1)], dim=1)
        return self.key_valid[:, None, None, :]

    def span(self, pos: torch.Tensor, n: int, *, layer: int = 0, window=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Positions (n,) and mask (B, 1, n, cached + n) of ``n`` new positions after layer
        ``layer``'s cached keys (``pos`` and ``window`` are not read)."""
        k = self.keys[layer]
        cached = k.shape[2] if k is not None else 0
        device = self.key_valid.device
        q = cached + torch.arange(n, device=device)
        keys = nn.functional.pad(self.key_valid[:, : self.prompt_len], (0, cached + n - self.prompt_len), value=True)
        cols = torch.arange(cached + n, device=device)
        return q, (keys[:, None, :] & (cols[None, None, :] <= q[None, :, None]))[:, None]

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
            self.n_pad = self.n_pad.index_select(0, index)
            self.key_valid = self.key_valid.index_select(0, index)

    def crop(self, length: int) -> None:
        """Forget cached positions from ``length`` on; keys past the prompt stay valid."""
        for i, (k, v) in enumerate(zip(self.keys, self.values)):
            if k is not None:
                self.keys[i], self.values[i] = k[:, :, :length], v[:, :, :length]
        self.key_valid = nn.functional.pad(self.key_valid[:, : self.prompt_len], (0, length - self.prompt_len), value=True)


class StaticKVCache:
    kind = "static"

    def __init__(self, num_layers, batch_size, num_kv_heads, max_seq_len, head_dim, *, dtype, device):
        shape = (batch_size, num_kv_heads, max_seq_len, head_dim)
        self.keys = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(num_layers)]
        self.values = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(num_layers)]
        self.batch_size, self.max_seq_len = batch_size, max_seq_len
        self.key_valid = torch.ones(batch_size, max_seq_len, dtype=torch.bool, device=device)
        self.n_pad = torch.zeros(batch_size, dtype=torch.long, device=device)
        self.positions = torch.arange(max_seq_len, device=device)
        # Positions written by the next forward and how many positions it reads (None: all);
        # set before each call through ``target`` (a compiled step called without dynamo leaves
        # them as its batch's first call set them).
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

    def start(self, valid: torch.Tensor) -> torch.Tensor:
        """A prompt (B, L) of validity ``valid`` at positions 0..L-1 (prefill reads those only);
        later positions are valid.  Returns the prefill mask."""
        length = valid.shape[1]
        self.n_pad.copy_(length - valid.sum(-1))
        rows = torch.arange(length, device=valid.device)
        self.target(rows, rows)
        self.key_valid[:, :length] = valid
        self.key_valid[:, length:] = True
        return prompt_mask(valid)

    def window(self, kv_len: int, *, symbolic: bool = False) -> torch.Tensor:
        """The first ``kv_len`` positions (their indices), for a step that reads only those.
        ``symbolic``: compiled, the length stays symbolic (one graph for every length)."""
        if not 0 < kv_len <= self.max_seq_len:
            raise ValueError(f"kv_len {kv_len}: expected 1..{self.max_seq_len} (the cache length)")
        window = self.positions[:kv_len]
        if symbolic and kv_len > 1:
            torch._dynamo.mark_dynamic(window, 0)
        return window

    def span(self, pos: torch.Tensor, n: int, *, layer: int = 0,
             window: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Point the cache at ``n`` new positions from ``pos``, reading ``window`` (None: all);
        returns the positions (n,) and their mask (B, 1, n, S) over the S positions read."""
        q = pos + torch.arange(n, device=self.positions.device)
        self.target(q, window)
        cols = self.positions if window is None else window
        keys = self.key_valid[:, : cols.shape[0]]
        return q, (keys[:, None, :] & (cols[None, None, :] <= q[None, :, None]))[:, None]

    def update(self, key: torch.Tensor, value: torch.Tensor, layer_idx: int, *args, **kwargs):
        k_buf, v_buf = self.keys[layer_idx], self.values[layer_idx]
        with region("KV-cache update", f"static.{layer_idx}"):
            k_buf.index_copy_(2, self.write_pos, key.to(k_buf.dtype))  # a cache may be narrower than the model
            v_buf.index_copy_(2, self.write_pos, value.to(v_buf.dtype))
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
            self.n_pad.copy_(self.n_pad.index_select(0, index))
            self.key_valid.copy_(self.key_valid.index_select(0, index))

    def crop(self, length: int) -> None:
        """Nothing to free: positions past ``length`` are masked and later overwritten."""
