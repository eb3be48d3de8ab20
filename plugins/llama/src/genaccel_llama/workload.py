"""Code Llama: presets of the real architecture and local checkpoints, for code completion
(inputs, tokenizer and description are the core's :class:`genaccel.api.CodeCompletion`)."""

from __future__ import annotations

from genaccel.api import (
    BuildOptions,
    CodeCompletion,
    code_tokenizer,
    load_causal_lm,
    random_causal_lm,
    shard_causal_lm,
)
from transformers import LlamaConfig, LlamaForCausalLM

from .presets import PRESETS

NAME = "llama/t-t"
preset_tokenizer = code_tokenizer  # the presets' tokenizer, by vocabulary size


#: Code Llama's settings, the presets' defaults
CODE_LLAMA = dict(max_position_embeddings=16384, rope_parameters=dict(rope_type="default", rope_theta=1e6),
                  rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False)


def preset_config(name: str) -> LlamaConfig:
    return LlamaConfig(**{**CODE_LLAMA, **PRESETS[name]})


def build(options: BuildOptions) -> CodeCompletion:
    if options.checkpoint is not None:
        hf, tokenizer = load_causal_lm(options, LlamaForCausalLM, model_types=("llama",), shard=shard_causal_lm)
        random_weights = False
    else:
        config = preset_config(options.preset_in(PRESETS, NAME))
        hf = random_causal_lm(LlamaForCausalLM, config, options, shard=shard_causal_lm)
        tokenizer = preset_tokenizer(config.vocab_size)
        random_weights = True
    hf.eval()
    hf.set_attn_implementation("eager")  # the paper's baseline; `sdpa` switches it
    return CodeCompletion(hf, tokenizer, options=options, random_weights=random_weights, name=NAME)


__all__ = ["PRESETS", "build", "preset_config", "preset_tokenizer"]
