"""The step protocol over a Hugging Face decoder-only causal LM (Llama, Chameleon, ...).

genaccel reuses transformers' modules (embedding, decoder layers, rotary embedding, norm, LM
head) and owns what happens between them: the KV cache, the masks, the positions and the
decode loop.  The protocol every autoregressive decoder drives:

- ``setup(batch_size, max_seq_len)``: size the cache (a static cache is kept while it fits);
- ``prefill(input_ids, valid) -> logits``: left-padded prompts, logits of the last position;
- ``decode(tokens, pos) -> logits``: one step at the device-side cache position ``pos``;
- ``reorder_cache(index)``: beam search, in place for the static cache;
- ``forward_layers(hidden, start, end, ...)``: a range of layers (early exit).
"""

from __future__ import annotations

import torch
from torch import nn

from .kvcache import DynamicKVCache, StaticKVCache


class HFCausalLM:
    def __init__(self, hf_model: nn.Module, *, backbone: str = "model"):
        self.hf = hf_model
        base = getattr(hf_model, backbone)
        self.embed_tokens = base.embed_tokens
        self.layers = base.layers
        self.norm = base.norm
        self.rotary_emb = base.rotary_emb
        self.lm_head = hf_model.lm_head
        cfg = hf_model.config
        self.num_layers = len(self.layers)
        self.num_kv_heads = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        self.cache_kind = "dynamic"
        self.compile_mode: str | None = None
        self.cuda_graph = False
        self.cache: DynamicKVCache | StaticKVCache | None = None
        self._decode_fn = None
        self._graphs: dict[tuple, object] = {}

    # --- configuration, called by optimizations -------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.lm_head.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.lm_head.weight.dtype

    @property
    def attention(self) -> str:
        return self.hf.config._attn_implementation

    def set_attention(self, impl: str) -> None:
        self.hf.set_attn_implementation(impl)
        self._decode_fn = None

    def set_cache(self, kind: str) -> None:
        if kind not in ("dynamic", "static"):
            raise ValueError(f"cache kind {kind!r}: expected 'dynamic' or 'static'")
        self.cache_kind, self.cache, self._decode_fn = kind, None, None

    def set_compile(self, mode: str | None) -> int:
        """Compile the decode step; on CPU also route few-row linears to a fused reduction.

        Returns how many linear layers were switched to :class:`RowReduceLinear`.
        """
        self.compile_mode, self._decode_fn = mode, None
        if not mode or self.device.type != "cpu":
            return 0
        switched = 0
        for module in self.hf.modules():
            if type(module) is nn.Linear and type(module.weight) in (torch.Tensor, nn.Parameter):
                module.__class__ = RowReduceLinear
                switched += 1
        return switched

    def set_cuda_graph(self, enabled: bool = True) -> None:
        if enabled and self.cache_kind != "static":
            raise ValueError("CUDA graphs need the static KV cache")
        self.cuda_graph, self._decode_fn = enabled, None

    def weight_bytes_per_step(self) -> int:
        """Bytes of weights read by one decode step: everything but the embedding table."""
        skip = {id(p) for p in self.embed_tokens.parameters()}
        total = sum(_nbytes(p) for p in self.hf.parameters() if id(p) not in skip)
        if any(id(p) in skip for p in self.lm_head.parameters()):  # tied embeddings: the head reads it
            total += sum(_nbytes(p) for p in self.lm_head.parameters())
        return total

    def kv_bytes_per_token(self) -> int:
        return 2 * self.num_layers * self.num_kv_heads * self.head_dim * self.dtype.itemsize

    # --- the step protocol ------------------------------------------------------------------
    def setup(self, batch_size: int, max_seq_len: int) -> None:
        dev = self.device
        if self.cache_kind == "static":
            c = self.cache
            if not (isinstance(c, StaticKVCache) and c.batch_size == batch_size and c.max_seq_len == max_seq_len):
                self.cache = StaticKVCache(
                    self.num_layers, batch_size, self.num_kv_heads, max_seq_len, self.head_dim,
                    dtype=self.dtype, device=dev,
                )
                if self.cuda_graph or self.compile_mode:
                    self.cache.mark_static()
                self.key_valid = torch.ones(batch_size, max_seq_len, dtype=torch.bool, device=dev)
                self.n_pad = torch.zeros(batch_size, dtype=torch.long, device=dev)
                self._arange = torch.arange(max_seq_len, device=dev)
        else:
            self.cache = DynamicKVCache(self.num_layers)
            self.key_valid = None
            self.n_pad = torch.zeros(batch_size, dtype=torch.long, device=dev)
        self.max_seq_len = max_seq_len
        self._min = torch.tensor(torch.finfo(self.dtype).min, dtype=self.dtype, device=dev)
        self._zero = torch.zeros((), dtype=self.dtype, device=dev)

    def _additive(self, allowed: torch.Tensor) -> torch.Tensor:
        return torch.where(allowed, self._zero, self._min)

    @torch.no_grad()
    def prefill(self, input_ids: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        bsz, length = input_ids.shape
        if valid is None:
            valid = torch.ones_like(input_ids, dtype=torch.bool)
        self.n_pad.copy_(length - valid.sum(-1))
        pos_ids = (valid.cumsum(-1) - 1).clamp(min=0)
        rows = torch.arange(length, device=input_ids.device)
        if isinstance(self.cache, StaticKVCache):
            self.cache.write_pos = rows
            self.key_valid[:, :length] = valid
            self.key_valid[:, length:] = True
            keys = self.key_valid
        else:
            self.cache = DynamicKVCache(self.num_layers)
            self.key_valid = valid
            self._has_pad = not bool(valid.all())
            keys = valid
        allowed = (self._arange_like(keys)[None, :] <= rows[:, None])[None] & keys[:, None, :]
        hidden = self.forward_layers(self.embed_tokens(input_ids), 0, self.num_layers, pos_ids, self._additive(allowed[:, None]))
        return self.lm_head(self.norm(hidden[:, -1]))

    def _arange_like(self, keys: torch.Tensor) -> torch.Tensor:
        if isinstance(self.cache, StaticKVCache):
            return self._arange
        return torch.arange(keys.shape[1], device=keys.device)

    def _decode(self, tokens: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        pos_ids = (pos - self.n_pad)[:, None]
        if isinstance(self.cache, StaticKVCache):
            self.cache.write_pos = pos.view(1)
            mask = self._additive((self.key_valid & (self._arange <= pos))[:, None, None, :])
        elif self._has_pad:
            self.key_valid = torch.cat([self.key_valid, self.key_valid.new_ones(tokens.shape[0], 1)], dim=1)
            mask = self._additive(self.key_valid[:, None, None, :])
        else:
            mask = None
        hidden = self.forward_layers(self.embed_tokens(tokens[:, None]), 0, self.num_layers, pos_ids, mask)
        return self.lm_head(self.norm(hidden[:, -1]))

    @torch.no_grad()
    def decode(self, tokens: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        if self._decode_fn is None:
            self._decode_fn = self._build_decode_fn()
        return self._decode_fn(tokens, pos)

    def _build_decode_fn(self):
        if self.cuda_graph and self.compile_mode:
            return torch.compile(self._decode, mode="reduce-overhead", fullgraph=True, dynamic=False)
        if self.cuda_graph:
            return self._graphed_decode
        if self.compile_mode:
            static = self.cache_kind == "static"
            return torch.compile(self._decode, mode=self.compile_mode, fullgraph=static, dynamic=None if not static else False)
        return self._decode

    def _graphed_decode(self, tokens: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """Capture the eager decode step in a CUDA graph per batch shape and replay it."""
        key = (tokens.shape[0], self.cache.max_seq_len, id(self.cache))
        entry = self._graphs.get(key)
        if entry is None:
            static_tokens, static_pos = tokens.clone(), pos.clone()
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(2):  # same inputs, same position: the cache writes are idempotent
                    self._decode(static_tokens, static_pos)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = self._decode(static_tokens, static_pos)
            entry = self._graphs[key] = (graph, static_tokens, static_pos, static_out)
        graph, static_tokens, static_pos, static_out = entry
        static_tokens.copy_(tokens)
        static_pos.copy_(pos)
        graph.replay()
        return static_out

    def forward_layers(self, hidden, start, end, pos_ids, mask):
        position_embeddings = self.rotary_emb(hidden, pos_ids)
        for layer in self.layers[start:end]:
            hidden = layer(
                hidden,
                attention_mask=mask,
                position_ids=pos_ids,
                past_key_values=self.cache,
                position_embeddings=position_embeddings,
            )
            if isinstance(hidden, tuple):
                hidden = hidden[0]
        return hidden

    def reorder_cache(self, index: torch.Tensor) -> None:
        self.cache.reorder(index)
        self.n_pad.copy_(self.n_pad.index_select(0, index))
        if self.key_valid is not None:
            if isinstance(self.cache, StaticKVCache):
                self.key_valid.copy_(self.key_valid.index_select(0, index))
            else:
                self.key_valid = self.key_valid.index_select(0, index)


class RowReduceLinear(nn.Linear):
    """``nn.Linear`` whose products with at most ``MAX_ROWS`` rows are a multiply-reduce.

    Under torch.compile on CPU, Inductor fuses ``(x[..., None, :] * W).sum(-1)`` into one
    vectorized reduction that streams the weight once: a bandwidth-bound GEMV.  On a 2-core
    x86 machine it read weights at ~28 GB/s where ATen's GEMV (MKL) read ~9-12 GB/s.  Larger
    inputs (prefill) keep ``F.linear``.  Eager, it would materialize the product: use it compiled.
    """

    MAX_ROWS = 8

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.numel() // x.shape[-1] <= self.MAX_ROWS:
            out = (x.unsqueeze(-2) * self.weight).sum(-1)
            return out + self.bias if self.bias is not None else out
        return nn.functional.linear(x, self.weight, self.bias)


def _nbytes(t: torch.Tensor) -> int:
    """Storage bytes of a (possibly quantized tensor-subclass) parameter."""
    inner = getattr(t, "__tensor_flatten__", None)
    if inner is not None and type(t) not in (torch.Tensor, nn.Parameter):
        names, _ = t.__tensor_flatten__()
        return sum(_nbytes(getattr(t, n)) for n in names)
    return t.numel() * t.element_size()
