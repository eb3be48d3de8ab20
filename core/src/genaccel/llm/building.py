"""Building a decoder-only LM: random weights on the meta device (a preset, each tensor-parallel rank
materializing only its shard) or a checkpoint folder, with what a meta build loses restored as the
architecture's record (:mod:`genaccel.llm.architectures`) says."""

from __future__ import annotations

import torch

from ..models.checkpoints import load_hf_checkpoint
from ..models.weights import init_random_weights
from ..plugin.specs import BuildOptions
from .architectures import architecture_of


def restore_buffers(hf) -> None:
    """Set what ``to_empty`` leaves undefined (buffers are not weights): the rotary embedding's
    frequencies and, where the architecture scales its embeddings, that scale."""
    config, base = hf.config, hf.model
    device = hf.lm_head.weight.device
    if getattr(base, "rotary_emb", None) is not None:
        base.rotary_emb = type(base.rotary_emb)(config=config).to(device)
    if architecture_of(config).embed_scale:
        with torch.no_grad():
            base.embed_tokens.embed_scale.fill_(config.hidden_size**0.5)


def random_causal_lm(model_class, config, options: BuildOptions, *, shard=None):
    """``model_class(config)`` with reproducible random weights (norms at the architecture's identity),
    in the run's dtype on its device; ``shard`` (:func:`genaccel.distributed.tp.shard_causal_lm`) splits
    it between the ranks of a tensor-parallel group before any weight exists."""
    with torch.device("meta"):
        hf = model_class(config).to(options.torch_dtype)
    if shard is not None:
        shard(hf)
    hf = hf.to_empty(device=options.device)
    hf.tie_weights()  # to_empty gives tied parameters (an embedding and its LM head) a storage each: tied again
    init_random_weights(hf, seed=options.seed, norm_weight=architecture_of(config).norm_neutral)
    restore_buffers(hf)
    return hf


def load_causal_lm(options: BuildOptions, model_class, *, model_types: tuple[str, ...], shard=None):
    """A checkpoint folder's model and tokenizer (:func:`genaccel.models.checkpoints.load_hf_checkpoint`),
    its buffers restored where it was built on the meta device (a tensor-parallel rank's shard)."""
    return load_hf_checkpoint(options, model_class, model_types=model_types, shard=shard, restore=restore_buffers)
