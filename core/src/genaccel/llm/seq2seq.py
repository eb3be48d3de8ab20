"""The step protocol over the decoder of a BART-like encoder-decoder: SeamlessM4T v2's text decoder (the
only autoregressive module), Parti's decoder over image tokens (M2M100 layers).

``set_encoder(hidden, mask)`` gives it a batch's encoder output (text or speech encoder); the
decoder's cross-attention keys and values are computed once, at prefill, and kept.  Under
classifier-free guidance the two streams differ in their encoder states alone (the prompt's, the empty
prompt's): ``set_encoder`` takes both and :meth:`Seq2SeqLM.guidance_streams` gives batched guidance
their concatenation (2B rows) or, sequential, the unconditional states to the twin.  The
self-attention cache is transformers-free (``genaccel.llm.kvcache``): a growing one reordered with
``index_select`` (the baseline, as transformers does), or a static one reordered in place.
A sample's beams share its encoder output, so the cross-attention cache needs no reordering
on the static path; the dynamic path reorders it as transformers does.

Compiled on the static cache, the decode step is Llama's (:mod:`genaccel.llm.causal_lm`): fixed
shapes but the symbolic lengths of the self-attention window and of the encoder states (padded to
a multiple of ``CROSS_ALIGN``), dynamo's guards skipped after a batch's first step, few-row
linears as fused GEMVs (:mod:`genaccel.llm.gemv`) and, with SDPA, the self and cross attention of the
one new token through ``flex_attention`` (:mod:`genaccel.llm.flex_decode`).  Under CUDA graphs the
encoder states are padded to a multiple of ``CROSS_BUCKET`` instead (a graph per bucket).
"""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import nn
from transformers.cache_utils import EncoderDecoderCache

from ..engine.executor import StepExecutor
from .causal_lm import HFCausalLM
from .flex_decode import SDPA_FLEX_DECODE, mark_cross_attention
from .footprint import nbytes
from .kvcache import StaticKVCache

CROSS_BUCKET = 256  # CUDA graphs: encoder lengths padded to a multiple of this (fixed shapes)
# Compiled without graphs: padded to a multiple of this, the length symbolic (one graph).  Never the
# first step's window (prompt + 1 = 3), which dynamo would otherwise give the same symbol, nor a length of
# 16·k + 8, past which Inductor's CPU flex kernel reads keys (head dimension 16; see flex_decode).
CROSS_ALIGN = 16


class CrossCache:
    """Each decoder layer's cross-attention keys and values, written once per batch."""

    def __init__(self, num_layers: int):
        self.layers = [SimpleNamespace(keys=None, values=None) for _ in range(num_layers)]

    def update(self, key, value, layer_idx, *args, **kwargs):
        layer = self.layers[layer_idx]
        if layer.keys is not None and layer.keys.shape == key.shape:  # same buffers: CUDA graphs read them
            layer.keys.copy_(key)
            layer.values.copy_(value)
        else:
            layer.keys, layer.values = key, value
        return layer.keys, layer.values

    def reorder(self, index: torch.Tensor) -> None:
        for layer in self.layers:
            if layer.keys is not None:
                layer.keys, layer.values = layer.keys.index_select(0, index), layer.values.index_select(0, index)


class StepCache(EncoderDecoderCache):
    """What transformers' attention layers look for: a self-attention and a cross-attention cache."""

    def __init__(self, self_cache, cross_cache: CrossCache):  # noqa: D107 - no Cache bookkeeping needed
        self.self_attention_cache, self.cross_attention_cache = self_cache, cross_cache
        self.is_updated = {}


class Seq2SeqLM(HFCausalLM):
    """Decoder steps of an encoder-decoder model whose decoder is BART-like (SeamlessM4T v2, M2M100).

    ``cross_attention``: the attribute of a decoder layer holding its cross attention (``cross_attention``
    in SeamlessM4T v2, ``encoder_attn`` in BART, M2M100 and NLLB)."""

    def __init__(self, hf_model: nn.Module, decoder: nn.Module, lm_head: nn.Module, *,
                 cross_attention: str = "cross_attention"):
        cfg = hf_model.config
        self.decoder = decoder
        self.padding_idx = decoder.embed_positions.padding_idx
        self.encoder_out: tuple[torch.Tensor, torch.Tensor] | None = None
        self.streams: tuple[tuple, tuple | None] | None = None  # (conditional, unconditional) encoder states
        self.cross_len = 0
        self.cross: CrossCache | None = None
        super().__init__(hf_model, backbone=None, embed_tokens=decoder.embed_tokens, layers=decoder.layers,
                         norm=decoder.layer_norm, lm_head=lm_head, num_kv_heads=cfg.decoder_attention_heads,
                         head_dim=cfg.hidden_size // cfg.decoder_attention_heads)
        for layer in self.layers:
            mark_cross_attention(getattr(layer, cross_attention))

    def _new_executors(self) -> None:
        super()._new_executors()
        self.reorder_steps = StepExecutor(str(self.device))  # eager unless compile_reorder

    def twin(self) -> Seq2SeqLM:
        other = super().twin()
        other.cross = None  # cross-attention buffers of its own (its encoder states differ)
        return other

    def set_encoder(self, hidden: torch.Tensor, mask: torch.Tensor,
                    unconditional: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
        """A batch's encoder states (B, S, D) and their validity (B, S); ``unconditional``: those of
        classifier-free guidance's unconditional stream ((B, S', D), (B, S')), placed by
        :meth:`guidance_streams`."""
        self.streams = ((hidden, mask), unconditional)
        self._use_encoder(hidden, mask)

    def guidance_streams(self, twin: Seq2SeqLM | None = None) -> None:
        """Condition classifier-free guidance's streams: batched (``twin`` None), rows [0, B) read the
        conditional encoder states and rows [B, 2B) the unconditional ones (both padded to the longer,
        the padding masked); sequential, this model reads the conditional states and ``twin`` the others."""
        (hidden, mask), unconditional = self.streams
        if unconditional is None:
            raise ValueError("guidance needs the unconditional stream's encoder states: set_encoder(..., unconditional=)")
        u_hidden, u_mask = unconditional
        if twin is not None:
            self._use_encoder(hidden, mask)
            twin._use_encoder(u_hidden, u_mask)
            return
        length = max(hidden.shape[1], u_hidden.shape[1])

        def padded(h, m):
            return nn.functional.pad(h, (0, 0, 0, length - h.shape[1])), nn.functional.pad(m, (0, length - m.shape[1]))

        (hidden, mask), (u_hidden, u_mask) = padded(hidden, mask), padded(u_hidden, u_mask)
        self._use_encoder(torch.cat([hidden, u_hidden]), torch.cat([mask, u_mask]))

    def _use_encoder(self, hidden: torch.Tensor, mask: torch.Tensor) -> None:
        """The encoder states the next prefill reads: padded to a multiple of the compiled step's alignment."""
        if self.cache_kind == "static" and (self.cuda_graph or self.compile_mode):
            pad = -hidden.shape[1] % (CROSS_BUCKET if self.cuda_graph else CROSS_ALIGN)
            hidden = nn.functional.pad(hidden, (0, 0, 0, pad))
            mask = nn.functional.pad(mask, (0, pad), value=False)
        self.encoder_out = (hidden, mask.bool())
        self.cross_len = hidden.shape[1]

    def setup(self, batch_size: int, max_seq_len: int) -> None:
        super().setup(batch_size, max_seq_len)
        if self.cache_kind != "static" or self.cross is None:  # the static path keeps its cross buffers
            self.cross = CrossCache(self.num_layers)
        self.cache_pair = StepCache(self.cache, self.cross)

    def _step_key(self, *name):
        key = super()._step_key(*name)
        return (*key, self.cross_len) if self.cuda_graph and not self.compile_mode else key  # a graph per encoder bucket

    def set_cache(self, kind: str) -> None:
        super().set_cache(kind)
        self.cross = None

    def _positions(self, pos_ids: torch.Tensor) -> torch.Tensor:
        table = self.decoder.embed_positions.weights
        return table.index_select(0, (pos_ids + self.padding_idx + 1).reshape(-1)).view(*pos_ids.shape, -1)

    @torch.no_grad()
    def prefill(self, input_ids: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        rows = input_ids.shape[0]
        hidden, enc_valid = self.encoder_out
        if rows != hidden.shape[0]:  # beams: each sample's encoder output once per beam
            reps = rows // hidden.shape[0]
            hidden, enc_valid = hidden.repeat_interleave(reps, 0), enc_valid.repeat_interleave(reps, 0)
        self.enc_hidden, self.enc_valid = hidden, enc_valid
        self.cross_mask = self._additive(enc_valid[:, None, None, :])
        self.steps.new_batch()  # the decode step reads these new tensors: its next call captures them
        if valid is None:
            valid = torch.ones_like(input_ids, dtype=torch.bool)
        allowed = self.cache.start(valid)
        pos_ids = (valid.cumsum(-1) - 1).clamp(min=0)
        self.cache_pair.is_updated = {}
        out = self._layers(self.embed_tokens(input_ids), pos_ids, self._additive(allowed))
        if self.compile_mode and not self.cuda_graph and isinstance(self.cache, StaticKVCache):
            self._symbolic_encoder_length()
        return self.head(out[:, -1])

    def _symbolic_encoder_length(self) -> None:
        """The compiled step keeps the encoder length symbolic: one graph for every batch."""
        cross = [t for layer in self.cross.layers for t in (layer.keys, layer.values)]
        for t, dim in ((self.enc_hidden, 1), (self.enc_valid, 1), (self.cross_mask, 3), *((t, 2) for t in cross)):
            torch._dynamo.mark_dynamic(t, dim)

    def _decode(self, tokens: torch.Tensor, pos: torch.Tensor, window: torch.Tensor | None = None) -> torch.Tensor:
        embedded = self.embed_tokens(tokens[:, None])
        extra = {}
        if isinstance(self.cache, StaticKVCache):
            q, allowed = self.cache.span(pos, 1, window=window)
            pos_ids = q[None, :] - self.cache.n_pad[:, None]
            if self.attention == SDPA_FLEX_DECODE:
                extra = dict(static_keys=(self.cache.key_valid, pos), cross_keys=(self.enc_valid, None))
        else:
            allowed = self.cache.step_mask()
            pos_ids = (pos - self.cache.n_pad)[:, None]
        out = self._layers(embedded, pos_ids, None if allowed is None else self._additive(allowed), **extra)
        return self.head(out[:, -1])

    def _layers(self, hidden, pos_ids, mask, **attention_kwargs):
        hidden = hidden + self._positions(pos_ids).to(hidden.dtype)
        enc = self.enc_hidden  # read by the cross attention only while its cache is empty (prefill)
        for layer in self.layers:
            hidden = layer(hidden, attention_mask=mask, encoder_hidden_states=enc,
                           encoder_attention_mask=self.cross_mask, cache=self.cache_pair,
                           **attention_kwargs)
            if isinstance(hidden, tuple):
                hidden = hidden[0]
        return hidden

    def compile_reorder(self) -> None:
        """Compile the cache reorder (one fused gather-copy per buffer; the filled length is symbolic)."""
        self.reorder_steps.configure(compile="default", fullgraph=False, dynamic=True)

    def reorder_cache(self, index: torch.Tensor, length: int | None = None) -> None:
        self.reorder_steps.run("reorder", self._reorder, index, length)

    def _reorder(self, index: torch.Tensor, length: int | None = None) -> None:
        self.cache.reorder(index, length)
        if not isinstance(self.cache, StaticKVCache):  # as transformers: every cache follows the beams
            self.cross.reorder(index)

    def weight_bytes_per_step(self) -> int:
        skip = {id(p) for p in self.embed_tokens.parameters()}
        return sum(nbytes(p) for p in self.decoder.parameters() if id(p) not in skip) + sum(
            nbytes(p) for p in self.lm_head.parameters())
