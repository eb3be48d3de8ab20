"""The step protocol over a Hugging Face decoder-only causal LM (Llama, Chameleon, ...).

genaccel reuses transformers' modules (embedding, decoder layers, rotary embedding, norm, LM
head) and owns what happens between them: the KV cache, the masks, the positions and the
decode loop.  The protocol every autoregressive decoder drives:

- ``setup(batch_size, max_seq_len)``: size the cache (a static cache is kept while it fits);
- ``prefill(input_ids, valid) -> logits``: left-padded prompts, logits of the last position;
- ``decode(tokens, pos, kv_len=None) -> logits``: one step at the device-side cache position
  ``pos``; ``kv_len`` (host side, ``pos + 1``) lets a static cache read only its filled positions;
- ``reorder_cache(index, length)``: beam search, in place for the static cache (its first
  ``length`` positions);
- ``forward_layers(hidden, start, end, ...)``: a range of layers;
- ``draft(tokens, pos, exit_layer)``, ``verify(last, hidden, pos, exit_layer)``, ``crop(length)``:
  self-speculative decoding (see :mod:`genaccel.speculative`).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.attention.flex_attention import flex_attention
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from .kvcache import DynamicKVCache, StaticKVCache

SDPA_FLEX_DECODE = "genaccel-sdpa-flex-decode"


def sdpa_flex_decode(module, query, key, value, attention_mask, scaling=None, dropout=0.0, static_keys=None, **kwargs):
    """transformers' SDPA attention, except for one-token queries on the static cache inside a
    compiled step, which go through ``flex_attention``: for those Inductor generates a CPU kernel
    that reads the KV cache ~1.3-1.6x as fast as SDPA's CPU flash kernel does (small preset, 12
    layers, 460-900 cached positions).  ``set_compile`` selects it on CPU when attention is ``sdpa``.

    ``static_keys`` = (key_valid (B, max_seq_len), pos): the mask is rebuilt from these inputs
    inside the kernel (Inductor's CPU flex kernel cannot read a mask computed in the graph).
    """
    flex = query.dtype in (torch.float32, torch.bfloat16, torch.float16)  # what Inductor's CPU kernel supports
    if static_keys is None or query.shape[2] != 1 or dropout or not flex or not torch.compiler.is_compiling():
        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs)
    valid, pos = static_keys

    def score_mod(score, b, h, q_idx, kv_idx):
        last = (pos if pos.dim() == 0 else pos[0]) + q_idx
        return torch.where(valid[b, kv_idx] & (kv_idx <= last), score, -float("inf"))

    out = flex_attention(query, key, value, score_mod=score_mod, scale=scaling, enable_gqa=query.shape[1] != key.shape[1])
    return out.transpose(1, 2).contiguous(), None


AttentionInterface.register(SDPA_FLEX_DECODE, sdpa_flex_decode)


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
        self._fns: dict[object, object] = {}  # step functions, compiled or graphed as configured
        self._graphs: dict[tuple, object] = {}
        self._decode_warm = False
        self.allowed_tokens: torch.Tensor | None = None  # (V,) bool: logits of other tokens are set to the minimum

    def twin(self) -> HFCausalLM:
        """A second step protocol over the same weights and settings, with a cache of its own
        (a second stream decoded by separate forwards, e.g. unbatched classifier-free guidance)."""
        other = copy.copy(self)
        other.cache, other._fns, other._graphs = None, {}, {}
        return other

    def set_allowed_tokens(self, allowed: torch.Tensor | None) -> None:
        """Restrict every step's logits to ``allowed`` (a device mask, kept for the run)."""
        self.allowed_tokens = None if allowed is None else allowed.to(self.device)
        self._fns.clear()

    def head(self, hidden: torch.Tensor) -> torch.Tensor:
        """Final norm and LM head, restricted to the allowed tokens."""
        logits = self.lm_head(self.norm(hidden))
        if self.allowed_tokens is not None:
            logits = logits.masked_fill(~self.allowed_tokens, torch.finfo(logits.dtype).min)
        return logits

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
        self._fns.clear()

    def set_cache(self, kind: str) -> None:
        if kind not in ("dynamic", "static"):
            raise ValueError(f"cache kind {kind!r}: expected 'dynamic' or 'static'")
        self.cache_kind, self.cache = kind, None
        self._fns.clear()

    def set_compile(self, mode: str | None) -> int:
        """Compile the decode step; on CPU also route few-row linears to a fused reduction and,
        with SDPA, one-token attention to ``flex_attention`` (:func:`sdpa_flex_decode`).

        Returns how many linear layers were switched to :class:`RowReduceLinear`.
        """
        self.compile_mode = mode
        self._fns.clear()
        cpu = mode and self.device.type == "cpu"
        if cpu and self.attention == "sdpa":
            self.hf.set_attn_implementation(SDPA_FLEX_DECODE)
        elif not cpu and self.attention == SDPA_FLEX_DECODE:
            self.hf.set_attn_implementation("sdpa")
        return cpu_gemv_linears(self.hf) if cpu else 0

    def set_cuda_graph(self, enabled: bool = True) -> None:
        if enabled and self.cache_kind != "static":
            raise ValueError("CUDA graphs need the static KV cache")
        self.cuda_graph = enabled
        self._fns.clear()

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
        self._decode_warm = False  # the batch's first decode step runs dynamo's guards
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
            self._static_prefill(rows, valid)
        else:
            self.cache = DynamicKVCache(self.num_layers)
            self.key_valid = valid
            self.prompt_len = length
            self._has_pad = not bool(valid.all())
        allowed = (rows[None, :] <= rows[:, None])[None] & valid[:, None, :]
        hidden = self.forward_layers(self.embed_tokens(input_ids), 0, self.num_layers, pos_ids, self._additive(allowed[:, None]))
        return self.head(hidden[:, -1])

    def _static_prefill(self, rows: torch.Tensor, valid: torch.Tensor) -> None:
        """Point the static cache at a prompt's positions ``rows`` (prefill reads those only) and
        record which of them are padding; later positions are valid."""
        self.cache.target(rows, rows)
        self.key_valid[:, : rows.shape[0]] = valid
        self.key_valid[:, rows.shape[0] :] = True

    def _static_step(self, q: torch.Tensor, window: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Point the static cache at new positions ``q``, reading ``window`` (see :meth:`window`);
        returns the validity (B, S) and indices (S,) of the S positions read."""
        self.cache.target(q, window)
        cols = self._arange if window is None else window
        return self.key_valid[:, : cols.shape[0]], cols

    def window(self, kv_len: int | None) -> torch.Tensor | None:
        """The static cache's first ``kv_len`` positions (their indices) for a step that reads
        only those; None (the whole cache) without ``kv_len``, with another cache, or with CUDA
        graphs (a graph replays fixed shapes).  Compiled, the length stays symbolic."""
        if kv_len is None or self.cuda_graph or not isinstance(self.cache, StaticKVCache):
            return None
        if not 0 < kv_len <= self.max_seq_len:
            raise ValueError(f"kv_len {kv_len}: expected 1..{self.max_seq_len} (the cache length)")
        window = self._arange[:kv_len]
        if self.compile_mode and kv_len > 1:
            torch._dynamo.mark_dynamic(window, 0)
        return window

    def _decode(self, tokens: torch.Tensor, pos: torch.Tensor, window: torch.Tensor | None = None) -> torch.Tensor:
        embedded = self.embed_tokens(tokens[:, None])
        if isinstance(self.cache, StaticKVCache):
            hidden = self.forward_span(embedded, 0, self.num_layers, pos, window, one_token=True)
        else:  # the cache grows by one: no position bookkeeping, a mask only when prompts were padded
            mask = None
            if self._has_pad:
                self.key_valid = torch.cat([self.key_valid, self.key_valid.new_ones(tokens.shape[0], 1)], dim=1)
                mask = self._additive(self.key_valid[:, None, None, :])
            hidden = self.forward_layers(embedded, 0, self.num_layers, (pos - self.n_pad)[:, None], mask)
        return self.head(hidden[:, -1])

    @torch.no_grad()
    def decode(self, tokens: torch.Tensor, pos: torch.Tensor, kv_len: int | None = None) -> torch.Tensor:
        """One step: ``tokens`` (B,) at cache position ``pos``.  ``kv_len``: every position this
        step reads is below it (``pos + 1`` where the caller knows ``pos`` on the host); a static
        cache then reads only those instead of all ``max_seq_len``."""
        step = self._step("decode", self._decode)
        window = self.window(kv_len)
        args = (tokens, pos) if window is None else (tokens, pos, window)
        if self._decode_warm and self.compile_mode and not self.cuda_graph and isinstance(self.cache, StaticKVCache):
            # On a static cache the later steps of a batch differ from its first only in values
            # and the symbolic window length: the graph the first step's guards chose serves them
            # without re-checking (~3000 guards, ~1 ms a step on CPU).  Were a recompile needed
            # after all, torch raises instead of running a wrong graph.
            with torch.compiler.set_stance("default", skip_guard_eval_unsafe=True):
                return step(*args)
        out = step(*args)
        self._decode_warm = True
        return out

    def _step(self, key, fn):
        """``fn`` as this model's settings want it: eager, compiled, or replayed from a CUDA graph."""
        wrapped = self._fns.get(key)
        if wrapped is None:
            wrapped = self._fns[key] = self._wrap(fn, key)
            self._decode_warm = False
        return wrapped

    def _wrap(self, fn, key):
        if self.cuda_graph and self.compile_mode:
            return torch.compile(fn, mode="reduce-overhead", fullgraph=True, dynamic=False)
        if self.cuda_graph:
            return lambda *args: self._graphed(fn, key, *args)
        if self.compile_mode:
            static = self.cache_kind == "static"
            return torch.compile(fn, mode=self.compile_mode, fullgraph=static, dynamic=None if not static else False)
        return fn

    def _graphed(self, fn, key, *args):
        """Capture eager ``fn`` in a CUDA graph per input shape and replay it."""
        key = (key, *(tuple(a.shape) for a in args), self.cache.max_seq_len, id(self.cache))
        entry = self._graphs.get(key)
        if entry is None:
            static_args = [a.clone() for a in args]
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(2):  # same inputs, same positions: the cache writes are idempotent
                    fn(*static_args)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = fn(*static_args)
            entry = self._graphs[key] = (graph, static_args, static_out)
        graph, static_args, static_out = entry
        for buf, a in zip(static_args, args):
            buf.copy_(a)
        graph.replay()
        return static_out

    # --- self-speculative decoding: spans of new positions through a range of layers ----------
    def forward_span(self, hidden: torch.Tensor, start: int, end: int, pos: torch.Tensor,
                     window: torch.Tensor | None = None, one_token: bool = False) -> torch.Tensor:
        """Layers [start, end) over ``hidden.shape[1]`` new positions from cache position ``pos``.

        Each new position sees the valid cached keys up to itself.  With the dynamic cache the
        span starts where layer ``start``'s cache ends (``pos`` is not read).  ``window``: see
        :meth:`window` (static cache).  ``one_token``: a plain decode step, whose attention may go
        through :func:`sdpa_flex_decode` (the speculative spans keep SDPA: dynamo lost track of
        the cache's write positions across a flex_attention call followed by another span).
        """
        if start >= end:
            return hidden
        bsz, n = hidden.shape[:2]
        extra = {}
        if isinstance(self.cache, StaticKVCache):
            q = pos + torch.arange(n, device=hidden.device)
            keys, cols = self._static_step(q, window)
            if one_token and self.attention == SDPA_FLEX_DECODE:
                extra["static_keys"] = (self.key_valid, pos)
        else:
            k = self.cache.keys[start]
            cached = k.shape[2] if k is not None else 0
            q = cached + torch.arange(n, device=hidden.device)
            keys = nn.functional.pad(self.key_valid[:, : self.prompt_len], (0, cached + n - self.prompt_len), value=True)
            cols = torch.arange(cached + n, device=hidden.device)
        allowed = keys[:, None, :] & (cols[None, None, :] <= q[None, :, None])
        pos_ids = q[None, :] - self.n_pad[:, None]
        return self.forward_layers(hidden, start, end, pos_ids, self._additive(allowed[:, None]), **extra)

    def _draft(self, tokens: torch.Tensor, pos: torch.Tensor, exit_layer: int):
        hidden = self.forward_span(self.embed_tokens(tokens[:, None]), 0, exit_layer, pos)
        return hidden, self.head(hidden[:, -1])

    def _verify(self, last: torch.Tensor, hidden: torch.Tensor, pos: torch.Tensor, exit_layer: int):
        k = hidden.shape[1]
        tail = self.forward_span(self.embed_tokens(last[:, None]), 0, exit_layer, pos + k)
        out = self.forward_span(torch.cat([hidden, tail], dim=1), exit_layer, self.num_layers, pos)
        return self.head(out)

    @torch.no_grad()
    def draft(self, tokens: torch.Tensor, pos: torch.Tensor, exit_layer: int):
        """One draft step: ``tokens`` (B,) at ``pos`` through layers [0, exit_layer), the shared
        norm and head.  Returns the layer-``exit_layer`` hidden state (B, 1, D) and logits (B, V)."""
        return self._step(("draft", exit_layer), lambda t, p: self._draft(t, p, exit_layer))(tokens, pos)

    @torch.no_grad()
    def verify(self, last: torch.Tensor, hidden: torch.Tensor, pos: torch.Tensor, exit_layer: int) -> torch.Tensor:
        """Logits (B, k+1, V) of the full model for the k drafted inputs and the last draft token.

        ``hidden`` (B, k, D) are the cached layer-``exit_layer`` states of the inputs at ``pos``..
        ``pos+k-1``; only ``last`` (at ``pos+k``) goes through the early layers here.
        """
        return self._step(("verify", exit_layer), lambda t, h, p: self._verify(t, h, p, exit_layer))(last, hidden, pos)

    def reset_steps(self) -> None:
        """Drop compiled and graphed step functions (and dynamo's caches): they are rebuilt on next use."""
        self._fns.clear()
        self._graphs.clear()
        torch._dynamo.reset()

    def crop(self, length: int) -> None:
        """Forget cached positions from ``length`` on (rejected drafts)."""
        self.cache.crop(length)
        if isinstance(self.cache, DynamicKVCache):  # plain decode steps may follow: keys valid past the prompt
            self.key_valid = nn.functional.pad(self.key_valid[:, : self.prompt_len], (0, length - self.prompt_len), value=True)

    def forward_layers(self, hidden, start, end, pos_ids, mask, **attention_kwargs):
        position_embeddings = self.rotary_emb(hidden, pos_ids)
        for layer in self.layers[start:end]:
            hidden = layer(
                hidden,
                attention_mask=mask,
                position_ids=pos_ids,
                past_key_values=self.cache,
                position_embeddings=position_embeddings,
                **attention_kwargs,
            )
            if isinstance(hidden, tuple):
                hidden = hidden[0]
        return hidden

    def reorder_cache(self, index: torch.Tensor, length: int | None = None) -> None:
        self.cache.reorder(index, length)
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
    x86 machine it read weights at ~28 GB/s where ATen's GEMV (MKL) read ~9-12 GB/s.  Up to
    ``SHARED_ROWS`` rows are written as one reduction per row, which Inductor fuses into a single
    loop sharing each weight load (2-3 rows cost about what one does: self-speculative verify);
    up to ``MAX_ROWS`` as one broadcast reduction; larger inputs (prefill) keep ``F.linear``.
    With torchao int8 weight-only weights (``int8`` set by :func:`cpu_gemv_linears`) the int8
    values are converted inside the reduction, so a step reads a quarter of fp32's bytes.
    Eager, it would materialize the product: use it compiled.
    """

    MAX_ROWS = 8
    SHARED_ROWS = 3
    int8: tuple[torch.Tensor, torch.Tensor] | None = None  # (int8 weight, per-row scale) of int8 weight-only

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.numel() // x.shape[-1]
        if rows > self.MAX_ROWS:
            return nn.functional.linear(x, self.weight, self.bias)
        w = self.weight if self.int8 is None else self.int8[0].to(x.dtype)  # fused: int8 is what is read
        if self.int8 is not None or 1 < rows <= self.SHARED_ROWS:  # int8: shared loads pay at any row count
            flat = x.reshape(rows, x.shape[-1])
            out = torch.stack([(flat[r] * w).sum(-1) for r in range(rows)]).view(*x.shape[:-1], -1)
        else:
            out = (x.unsqueeze(-2) * w).sum(-1)
        if self.int8 is not None:
            out = out * self.int8[1]
        return out + self.bias if self.bias is not None else out


def _int8_weight_only(w) -> bool:
    """A torchao int8 weight-only tensor with one scale per output row."""
    return (
        type(w).__name__ == "Int8Tensor" and getattr(w, "act_quant_kwargs", True) is None
        and getattr(w, "act_pre_scale", None) is None and list(w.block_size)[-1] == w.qdata.shape[-1]
    )


def cpu_gemv_linears(root: nn.Module) -> int:
    """Switch the linear layers under ``root`` with float or int8 weight-only weights to
    :class:`RowReduceLinear`; returns how many.  Other weight formats keep their own kernels."""
    switched = 0
    for module in root.modules():
        if type(module) is not nn.Linear:
            continue
        w = module.weight
        if type(w) in (torch.Tensor, nn.Parameter):
            module.__class__ = RowReduceLinear
        elif _int8_weight_only(w):
            module.__class__ = RowReduceLinear
            module.int8 = (w.qdata, w.scale.reshape(-1))
        else:
            continue
        switched += 1
    return switched


def _nbytes(t: torch.Tensor) -> int:
    """Storage bytes of a (possibly quantized tensor-subclass) parameter."""
    inner = getattr(t, "__tensor_flatten__", None)
    if inner is not None and type(t) not in (torch.Tensor, nn.Parameter):
        names, _ = t.__tensor_flatten__()
        return sum(_nbytes(getattr(t, n)) for n in names)
    return t.numel() * t.element_size()
