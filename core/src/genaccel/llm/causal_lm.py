"""The step protocol over a Hugging Face decoder-only causal LM (Llama, Chameleon, ...).

genaccel reuses transformers' modules (embedding, decoder layers, rotary embedding, norm, LM
head) and owns what happens between them: the KV cache and its masks (:mod:`genaccel.llm.kvcache`),
the positions and the decode loop.  The protocol every autoregressive decoder drives:

- ``setup(batch_size, max_seq_len)``: size the cache (a static cache is kept while it fits);
- ``prefill(input_ids, valid) -> logits``: left-padded prompts, logits of the last position;
- ``decode(tokens, pos, kv_len=None) -> logits``: one step at the device-side cache position
  ``pos``; ``kv_len`` (host side, ``pos + 1``) lets a static cache read only its filled positions;
- ``reorder_cache(index, length)``: beam search, in place for the static cache (its first
  ``length`` positions);
- ``forward_layers(hidden, start, end, ...)``: a range of layers;
- ``draft``, ``verify``, ``crop``: self-speculative decoding (:mod:`genaccel.llm.speculation`).

Steps run through a :class:`genaccel.engine.executor.StepExecutor`: eager, compiled or replayed from
CUDA graphs, as ``set_compile`` and ``set_cuda_graph`` configure.  Byte accounting is in
:mod:`genaccel.llm.footprint`, the CPU GEMV in :mod:`genaccel.llm.gemv`, the flex decode attention in
:mod:`genaccel.llm.flex_decode`.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..engine.executor import StepExecutor
from ..errors import GenaccelError
from .architectures import architecture_of
from .flex_decode import FLEX_DECODE, flex_window
from .footprint import StepBytes
from .gemv import cpu_gemv_linears
from .kvcache import DynamicKVCache, StaticKVCache
from .speculation import SelfSpeculation


class HFCausalLM(SelfSpeculation, StepBytes):
    def __init__(self, hf_model: nn.Module, *, backbone: str | None = "model", embed_tokens=None, layers=None,
                 norm=None, rotary_emb=None, lm_head=None, num_kv_heads: int | None = None, head_dim: int | None = None):
        """The modules come from ``hf_model.<backbone>`` and ``hf_model.lm_head``, the attention
        shapes from ``hf_model.config``, unless given."""
        self.hf = hf_model
        base = getattr(hf_model, backbone) if backbone else None
        self.embed_tokens = embed_tokens if embed_tokens is not None else base.embed_tokens
        self.layers = layers if layers is not None else base.layers
        self.norm = norm if norm is not None else base.norm
        self.rotary_emb = rotary_emb if rotary_emb is not None or base is None else base.rotary_emb
        self.lm_head = lm_head if lm_head is not None else hf_model.lm_head
        cfg = hf_model.config
        self.num_layers = len(self.layers)
        self.num_kv_heads = num_kv_heads or getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
        self.tensor_parallel = getattr(hf_model, "tensor_parallel", None)  # set by a tensor-parallel shard
        if self.tensor_parallel is not None and not num_kv_heads:  # each rank holds (and caches) its share of the KV heads
            self.num_kv_heads //= self.tensor_parallel.world_size
        self.head_dim = head_dim or getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        self.arch = architecture_of(cfg)  # what this architecture does differently (llm/architectures.py)
        self.windows = self.arch.layer_windows(cfg, self.num_layers)
        self.final_softcap = self.arch.logit_softcap(cfg)
        self.cache_kind = "dynamic"
        self.kv_dtype: torch.dtype | None = None  # the static cache's dtype where it is not the model's
        self.compile_mode: str | None = None
        self.cuda_graph = False
        self.cache: DynamicKVCache | StaticKVCache | None = None
        self.max_seq_len = 0
        self.allowed_tokens: torch.Tensor | None = None  # (V,) bool: logits of other tokens are set to the minimum
        self._new_executors()

    def _new_executors(self) -> None:
        self.steps = StepExecutor(str(self.device))  # the decode step (guards skipped after a batch's first)
        self.span_steps = StepExecutor(str(self.device))  # draft and verify
        self._configure()

    def twin(self) -> HFCausalLM:
        """A second step protocol over the same weights and settings, with a cache of its own
        (a second stream decoded by separate forwards, e.g. unbatched classifier-free guidance)."""
        other = copy.copy(self)
        other.cache = None
        other._new_executors()
        return other

    def guidance_streams(self, twin: HFCausalLM | None = None) -> None:
        """Condition classifier-free guidance's streams (batched, or over ``twin``): a decoder-only model's
        streams differ in their prompts alone, which the guidance loop feeds, so there is nothing to do."""

    def set_allowed_tokens(self, allowed: torch.Tensor | None) -> None:
        """Restrict every step's logits to ``allowed`` (a device mask, kept for the run)."""
        self.allowed_tokens = None if allowed is None else allowed.to(self.device)
        self._configure()

    def head(self, hidden: torch.Tensor) -> torch.Tensor:
        """Final norm and LM head (soft-capped where the architecture caps its logits), restricted to
        the allowed tokens."""
        logits = self.lm_head(self.norm(hidden))
        if self.final_softcap:
            logits = torch.tanh(logits / self.final_softcap) * self.final_softcap
        if self.allowed_tokens is not None:
            logits = logits.masked_fill(~self.allowed_tokens, torch.finfo(logits.dtype).min)
        return logits

    # --- configuration, called by optimizations -------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.lm_head.weight.device

    @property
    def dtype(self) -> torch.dtype:
        """The model's compute dtype: the embedding's (never quantized; an int4 head reports bf16)."""
        return self.embed_tokens.weight.dtype

    @property
    def attention(self) -> str:
        return self.hf.config._attn_implementation

    def set_attention(self, impl: str) -> None:
        """Attention through ``impl``, one the architecture takes (``arch.attention``)."""
        if impl not in self.arch.attention:
            raise GenaccelError(f"{self.arch.label or type(self.hf).__name__} takes attention "
                                f"{' or '.join(self.arch.attention)}, not {impl!r}")
        self.hf.set_attn_implementation(impl)
        self._route_attention()
        self._configure()

    def set_cache(self, kind: str) -> None:
        if kind not in ("dynamic", "static"):
            raise ValueError(f"cache kind {kind!r}: expected 'dynamic' or 'static'")
        self.cache_kind, self.cache = kind, None
        self._configure()

    def set_kv_dtype(self, dtype: torch.dtype | None) -> None:
        """Store the static cache's keys and values in ``dtype`` (None: the model's).  Attention goes
        through :func:`genaccel.llm.flex_decode.flex_decode`'s functions, which reconcile the dtypes."""
        if dtype is not None and self.plain_attention not in FLEX_DECODE:
            raise GenaccelError(f"a KV cache in {dtype} needs attention {' or '.join(FLEX_DECODE)}, "
                                f"not {self.plain_attention!r}")
        self.kv_dtype, self.cache = (None if dtype == self.dtype else dtype), None
        self._route_attention()

    @property
    def plain_attention(self) -> str:
        """The attention ``set_attention`` chose, without the flex decode function around it."""
        return next((k for k, v in FLEX_DECODE.items() if v == self.attention), self.attention)

    @property
    def flex_decode(self) -> bool:
        """Whether one-token attention goes through :mod:`genaccel.llm.flex_decode` (the native kernel or
        ``flex_attention``): compiled on CPU, when attention is the architecture's fastest (SDPA, or its eager attention where it
        takes no SDPA: Gemma 2's soft-capped attention, which the flex kernel caps)."""
        fused = "sdpa" if "sdpa" in self.arch.attention else "eager"
        return bool(self.compile_mode) and self.device.type == "cpu" and self.plain_attention == fused

    def _route_attention(self) -> None:
        """Attention through the flex decode function of the chosen one where one-token steps take flex
        attention or the cache's dtype differs from the model's; the chosen one itself elsewhere."""
        plain = self.plain_attention
        wrapped = plain in FLEX_DECODE and (self.flex_decode or self.kv_dtype is not None)
        impl = FLEX_DECODE[plain] if wrapped else plain
        if impl != self.attention:
            self.hf.set_attn_implementation(impl)

    def set_compile(self, mode: str | None) -> int:
        """Compile the decode step; on CPU also route few-row linears to a fused reduction and
        one-token attention to ``flex_attention`` (:attr:`flex_decode`).

        Returns how many linear layers were switched to :class:`genaccel.llm.gemv.RowReduceLinear`.
        """
        self.compile_mode = mode
        self._configure()
        self._route_attention()
        return cpu_gemv_linears(self.hf) if mode and self.device.type == "cpu" else 0

    def set_cuda_graph(self, enabled: bool = True) -> None:
        if enabled and self.cache_kind != "static":
            raise ValueError("CUDA graphs need the static KV cache")
        self.cuda_graph = enabled
        self._configure()

    def _configure(self) -> None:
        """The executors follow the settings: on a static cache the step is fullgraph with fixed
        shapes (but the window's symbolic length) and, compiled without CUDA graphs, skips dynamo's
        guards after a batch's first step and, on CPU, calls its kernels from C++ (``cpp_wrapper``); on the
        dynamic cache the shapes grow (dynamic=None)."""
        static = self.cache_kind == "static"
        self.steps.device = self.span_steps.device = str(self.device)  # where the weights are now
        settings = dict(compile=self.compile_mode, cuda_graph=self.cuda_graph, fullgraph=static,
                        dynamic=False if static else None)
        self.steps.configure(**settings, skip_guards=static and bool(self.compile_mode) and not self.cuda_graph,
                             cpp_wrapper=static and self.tensor_parallel is None)  # no C++ wrapper for collectives
        self.span_steps.configure(**settings)

    def _step_key(self, *name):
        """A step's executor key; a CUDA graph also follows the cache it was captured on."""
        if self.cuda_graph and not self.compile_mode:
            return (*name, self.cache.max_seq_len, id(self.cache))
        return name

    def reset_steps(self) -> None:
        """Drop compiled and graphed step functions (and dynamo's caches): they are rebuilt on next use."""
        self.steps.reset()
        self.span_steps.reset()

    # --- the step protocol ------------------------------------------------------------------
    def setup(self, batch_size: int, max_seq_len: int) -> None:
        dev = self.device
        self.steps.new_batch()  # the batch's first decode step runs dynamo's guards
        self.span_steps.new_batch()
        if self.cache_kind == "static":
            c = self.cache
            if not (isinstance(c, StaticKVCache) and c.batch_size == batch_size and c.max_seq_len == max_seq_len):
                self.cache = StaticKVCache(
                    self.num_layers, batch_size, self.num_kv_heads, max_seq_len, self.head_dim,
                    dtype=self.kv_dtype or self.dtype, device=dev,
                )
                if self.cuda_graph or self.compile_mode:
                    self.cache.mark_static()
        else:
            self.cache = DynamicKVCache(self.num_layers)
        self.max_seq_len = max_seq_len
        self._min = torch.tensor(torch.finfo(self.dtype).min, dtype=self.dtype, device=dev)
        self._zero = torch.zeros((), dtype=self.dtype, device=dev)

    def _additive(self, allowed: torch.Tensor) -> torch.Tensor:
        return torch.where(allowed, self._zero, self._min)

    def _masks(self, allowed: torch.Tensor | None, q: torch.Tensor) -> dict:
        """The additive masks of the layers, by window: ``allowed`` (B, 1, n, S; None: no mask) for
        layers without one; with a sliding window W, only the keys at cache index > ``q`` - W too
        (``q`` (n,): the queries' cache indices; key ``k`` is at cache index ``k``)."""
        masks = {None: None if allowed is None else self._additive(allowed)}
        for w in set(self.windows) - {None}:
            cols = torch.arange(allowed.shape[-1], device=allowed.device)
            masks[w] = self._additive(allowed & (cols[None, :] > q[:, None] - w))
        return masks

    @torch.no_grad()
    def prefill(self, input_ids: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        if valid is None:
            valid = torch.ones_like(input_ids, dtype=torch.bool)
        allowed = self.cache.start(valid)
        pos_ids = (valid.cumsum(-1) - 1).clamp(min=0)
        q = torch.arange(input_ids.shape[1], device=input_ids.device)
        hidden = self.forward_layers(self.embed_tokens(input_ids), 0, self.num_layers, pos_ids, self._masks(allowed, q))
        return self.head(hidden[:, -1])

    def window(self, kv_len: int | None) -> torch.Tensor | None:
        """The static cache's first ``kv_len`` positions (their indices) for a step that reads
        only those; None (the whole cache) without ``kv_len``, with another cache, or with CUDA
        graphs (a graph replays fixed shapes).  Compiled, the length stays symbolic."""
        if kv_len is None or self.cuda_graph or not isinstance(self.cache, StaticKVCache):
            return None
        if self.flex_decode:
            kv_len = flex_window(kv_len, self.cache.max_seq_len)
        return self.cache.window(kv_len, symbolic=bool(self.compile_mode))

    def _decode(self, tokens: torch.Tensor, pos: torch.Tensor, window: torch.Tensor | None = None) -> torch.Tensor:
        embedded = self.embed_tokens(tokens[:, None])
        if isinstance(self.cache, StaticKVCache):
            hidden = self.forward_span(embedded, 0, self.num_layers, pos, window, one_token=True)
        else:  # the cache grows by one: no position bookkeeping, a mask only for padded prompts or a window
            allowed = self.cache.step_mask(always=any(self.windows))
            q = None if allowed is None else torch.arange(allowed.shape[-1] - 1, allowed.shape[-1], device=pos.device)
            hidden = self.forward_layers(embedded, 0, self.num_layers, (pos - self.cache.n_pad)[:, None],
                                         self._masks(allowed, q))
        return self.head(hidden[:, -1])

    @torch.no_grad()
    def decode(self, tokens: torch.Tensor, pos: torch.Tensor, kv_len: int | None = None) -> torch.Tensor:
        """One step: ``tokens`` (B,) at cache position ``pos``.  ``kv_len``: every position this
        step reads is below it (``pos + 1`` where the caller knows ``pos`` on the host); a static
        cache then reads only those instead of all ``max_seq_len``."""
        window = self.window(kv_len)
        args = (tokens, pos) if window is None else (tokens, pos, window)
        return self.steps.run(self._step_key("decode"), self._decode, *args)

    def forward_span(self, hidden: torch.Tensor, start: int, end: int, pos: torch.Tensor,
                     window: torch.Tensor | None = None, one_token: bool = False) -> torch.Tensor:
        """Layers [start, end) over ``hidden.shape[1]`` new positions from cache position ``pos``.

        Each new position sees the valid cached keys up to itself (within its layer's sliding
        window, if any).  With the dynamic cache the span starts where layer ``start``'s cache ends
        (``pos`` is not read).  ``window``: see :meth:`window` (static cache).  ``one_token``: a
        plain decode step, whose attention may go through :func:`genaccel.llm.flex_decode.flex_decode`
        (the speculative spans keep SDPA: dynamo lost track of the cache's write positions across a
        flex_attention call followed by another span).
        """
        if start >= end:
            return hidden
        q, allowed = self.cache.span(pos, hidden.shape[1], layer=start, window=window)
        flex = one_token and self.flex_decode and isinstance(self.cache, StaticKVCache)
        pos_ids = q[None, :] - self.cache.n_pad[:, None]
        return self.forward_layers(hidden, start, end, pos_ids, self._masks(allowed, q),
                                   static_keys=(self.cache.key_valid, pos) if flex else None)

    def forward_layers(self, hidden, start, end, pos_ids, masks: dict, static_keys=None):
        """Layers [start, end) at positions ``pos_ids``, each with the mask of its window
        (:meth:`_masks`); ``static_keys`` (key validity, position): what the flex decode
        attention rebuilds its mask from, given with the layer's window."""
        position_embeddings = self.rotary_emb(hidden, pos_ids)
        for i in range(start, end):
            window = self.windows[i]
            extra = {} if static_keys is None else {"static_keys": (*static_keys, window)}
            hidden = self.layers[i](hidden, attention_mask=masks[window], position_ids=pos_ids, cache=self.cache,
                                    position_embeddings=position_embeddings, **extra)
            if isinstance(hidden, tuple):
                hidden = hidden[0]
        return hidden

    def reorder_cache(self, index: torch.Tensor, length: int | None = None) -> None:
        self.cache.reorder(index, length)
