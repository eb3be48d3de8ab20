"""The base of decoder-only text workloads built on the step protocol."""

from __future__ import annotations

from ..engine.attention import find_attention_sites
from ..plugin.specs import NotApplied
from .flex_decode import native_decode_attention


class CausalLMWorkload:
    """Base for autoregressive text workloads whose ``model`` is a :class:`genaccel.llm.causal_lm.HFCausalLM`
    (or its encoder-decoder form): it turns the members of the roles TokenModel, WeightStreaming,
    TransformersReference, AttentionSwitch, KVCacheSwitch, Compilable, CUDAGraphable and AttentionRecord (declared by
    the plugin's spec) into the model's settings.  Subclasses pass what they hold to ``__init__`` and set the
    token ids."""

    bos_token_id: int | None = None  # prepended by ``encode`` when set
    period_options: dict = {}  # AttentionRecord: one period is one whole generation (the key length grows by one a step)

    def __init__(self, model, module, tokenizer, *, options, random_weights: bool):
        """``model``: the step protocol (``HFCausalLM`` or ``Seq2SeqLM``); ``module``: every weight; the build's
        ``options``; ``random_weights``: a preset's, or a checkpoint's."""
        self.model, self.module, self.tokenizer = model, module, tokenizer
        self.options, self.random_weights = options, random_weights

    def attention_sites(self) -> list:
        """Every attention module of ``module`` (self or cross decided per call; keys include the cached ones)."""
        return find_attention_sites(self.module)

    def set_attention(self, impl: str) -> None:
        """Attention through ``impl``; an implementation the architecture does not take is a recorded skip."""
        allowed = self.model.arch.attention
        if impl not in allowed:
            raise NotApplied(f"{self.model.arch.label} takes attention {' or '.join(allowed)} only (transformers "
                             f"refuses {impl} for it)")
        self.model.set_attention(impl)

    def set_cache(self, kind: str) -> None:
        self.model.set_cache(kind)

    def set_kv_dtype(self, dtype) -> str:
        """KVCacheDtype: the static cache stored in ``dtype``; a model computing in it already is a recorded skip."""
        model = self.model
        stored, computed = (str(d).removeprefix("torch.") for d in (dtype, model.dtype))
        if model.dtype == dtype:
            raise NotApplied(f"the model computes in {stored}: its KV cache already is")
        before = model.kv_bytes_per_token()
        model.set_kv_dtype(dtype)
        return (f"static KV cache stored in {stored}: {model.kv_bytes_per_token():,} bytes per position instead of "
                f"{before:,}; attention computes in {computed}")

    def set_compile(self, mode: str) -> str:
        switched = self.model.set_compile(mode)
        if self.model.cache_kind == "static":
            note = (f"decode step compiled (mode={mode}, fullgraph, static shapes but the number of cached positions "
                    "read, which is symbolic: one graph); prefill runs eager")
        else:
            note = f"decode step compiled (mode={mode}, dynamic shapes: the cache grows); prefill runs eager"
        if switched:
            note += f"; {switched} linear layers emit a fused multiply-reduce GEMV for <= 8 rows (CPU)"
        if self.model.flex_decode:
            fallback = "SDPA" if "sdpa" in self.model.attention else "eager attention"
            cache_dtype = self.model.kv_dtype or self.model.dtype
            kernel = "genaccel's native kernel" if native_decode_attention(self.model.head_dim, cache_dtype) else \
                "flex_attention (Inductor's CPU kernel)"
            note += f"; one-token attention through {kernel}, {fallback} elsewhere"
        return note

    def set_cuda_graph(self) -> str:
        self.model.set_cuda_graph(True)
        if self.model.compile_mode:
            return "decode step captured by torch.compile's CUDA graph trees (reduce-overhead)"
        return "eager decode step captured in a CUDA graph per batch shape and replayed"

    def weight_bytes_per_step(self) -> int:
        return self.model.weight_bytes_per_step()

    def kv_bytes_per_token(self) -> int:
        return self.model.kv_bytes_per_token()

    def hf_generate(self, input_ids, attention_mask, generation_config):
        """transformers' own ``generate`` on the same weights (the reference decoder)."""
        return self.model.hf.generate(input_ids=input_ids, attention_mask=attention_mask,
                                      generation_config=generation_config)

    def encode(self, text: str) -> list[int]:
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        return ([self.bos_token_id] if self.bos_token_id is not None else []) + ids

    def decode(self, ids) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)
