"""Phenaki's bidirectional masked transformer (Villegas et al. 2022, Sec. 2.2; MaskGIT, Chang et al. 2022): video
tokens, some of them [MASK], and T5 text embeddings in; logits over the codebook for every position out.

Layout, as MaskGIT's BERT-style transformer: token + learned position embeddings (raster order over time, rows,
columns), LayerNorm, ``layers`` post-LN layers of bidirectional self-attention, cross-attention to the text and a
GELU MLP, then MaskGIT's head (dense, GELU, LayerNorm, logits against the tied token embeddings plus a bias).

The layers are transformers' ``Blip2QFormerModel`` with ``cross_attention_frequency=1``: BLIP-2's Q-Former is a
BERT encoder that takes input embeddings (no vocabulary of its own), attends bidirectionally, and has
cross-attention in every layer whose keys and values are read from ``encoder_hidden_size``-wide states, the
T5-XXL width (4096) here.  ``BertModel`` does not fit: transformers 5 refuses ``add_cross_attention`` unless
``is_decoder=True``, which makes its self-attention causal, and its cross-attention reads keys and values of
its own width.  Keys and values read from the 4096-wide text are what the paper's sizes count: 24 layers of
2048 give 1.8B, and its 20 layers of 1536 give 0.9B, only that way.  The Q-Former's attention goes through
transformers' attention interface, so ``set_attention`` switches eager and SDPA like any transformers model.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import Blip2QFormerConfig, Blip2QFormerModel

from .config import MaskGITConfig, checked_attention


def qformer_config(config: MaskGITConfig) -> Blip2QFormerConfig:
    """The Q-Former as MaskGIT's transformer: cross-attention in every layer, no text-input branch, no dropout."""
    return Blip2QFormerConfig(
        hidden_size=config.hidden_size, num_hidden_layers=config.layers, num_attention_heads=config.heads,
        intermediate_size=config.mlp_size, hidden_act="gelu", hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0, layer_norm_eps=config.layer_norm_eps, cross_attention_frequency=1,
        encoder_hidden_size=config.text_dim, use_qformer_text_input=False, vocab_size=config.vocab_size,
        max_position_embeddings=config.max_tokens)


class MaskGITHead(nn.Module):
    """MaskGIT's MLM head: dense, GELU, LayerNorm, then logits against the (tied) code embeddings plus a bias.

    The tied table comes in as its module, not as a tensor argument: a slice of a parameter keeps
    ``requires_grad`` even under ``no_grad``, and torch's module tracker (the FLOP counter of ``genaccel
    profile``) fails on a module input that requires grad but has no gradient function."""

    def __init__(self, config: MaskGITConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(config.codebook_size))

    def forward(self, hidden: torch.Tensor, token_embedding: nn.Embedding) -> torch.Tensor:
        h = self.norm(nn.functional.gelu(self.dense(hidden)))
        return h @ token_embedding.weight[: self.bias.shape[0]].t() + self.bias


class MaskGIT(nn.Module):
    """``forward(tokens (B, *grid), text (B, L, text_dim), text_mask (B, L) | None) → logits (B, *grid, codebook)``.
    ``tokens`` hold code ids or ``config.mask_token_id``; the grid is flattened in raster order, so a video of
    fewer frames uses the first positions."""

    def __init__(self, config: MaskGITConfig):
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embedding = nn.Embedding(config.max_tokens, config.hidden_size)
        self.transformer = Blip2QFormerModel(qformer_config(config))
        self.head = MaskGITHead(config)
        for table in (self.token_embedding, self.position_embedding):
            nn.init.normal_(table.weight, std=0.02)
        self.attention = "eager"
        self.set_attention("eager")

    @property
    def mask_token_id(self) -> int:
        return self.config.mask_token_id

    def set_attention(self, impl: str) -> None:
        """Every self- and cross-attention to ``eager`` (matmul-softmax-matmul) or ``sdpa``."""
        self.transformer.set_attn_implementation(checked_attention(impl, "MaskGIT"))
        self.attention = impl

    def forward(self, tokens: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor | None = None) -> torch.Tensor:
        grid = tokens.shape[1:]
        flat = tokens.reshape(tokens.shape[0], -1)
        length = flat.shape[1]
        if length > self.config.max_tokens:
            raise ValueError(f"MaskGIT has positions for {self.config.max_tokens} video tokens; got {length} "
                             f"(grid {tuple(grid)})")
        x = self.token_embedding(flat) + self.position_embedding.weight[:length]
        hidden = self.transformer(query_embeds=x, encoder_hidden_states=text,
                                  encoder_attention_mask=text_mask).last_hidden_state
        return self.head(hidden, self.token_embedding).reshape(*tokens.shape, self.config.codebook_size)
