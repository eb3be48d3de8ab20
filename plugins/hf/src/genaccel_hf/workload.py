"""hf/t-t: a checkpoint folder of a supported architecture, or a preset of one, as a code-completion
workload (:class:`genaccel.api.CodeCompletion`)."""

from __future__ import annotations

from genaccel.api import (
    ARCHITECTURES,
    BuildOptions,
    CodeCompletion,
    GenaccelError,
    check_checkpoint_dir,
    code_tokenizer,
    load_causal_lm,
    random_causal_lm,
    resolve_checkpoint,
    shard_causal_lm,
)

from .presets import DEFAULT_ARCH, PRESETS

NAME = "hf/t-t"


def preset_config(name: str, arch: str):
    """The architecture's own config class at preset ``name``'s shapes (head size hidden / heads)."""
    _, config_class = ARCHITECTURES[arch].model_and_config_classes()
    shape = PRESETS[name]
    head_dim = shape["hidden_size"] // shape["num_attention_heads"]
    config = config_class(**shape, head_dim=head_dim, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    if getattr(config, "query_pre_attn_scalar", None) is not None:  # queries scaled by the head size (Gemma 2's)
        config.query_pre_attn_scalar = head_dim
    return config


def build(options: BuildOptions) -> CodeCompletion:
    arch = options.options.get("arch")
    if options.checkpoint is not None:
        if arch is not None:
            raise GenaccelError("--arch chooses a preset's architecture; a checkpoint's comes from its config.json: "
                                "drop --arch")
        model_type = check_checkpoint_dir(resolve_checkpoint(options.checkpoint),
                                          model_types=tuple(ARCHITECTURES))["model_type"]
        model_class, _ = ARCHITECTURES[model_type].model_and_config_classes()
        hf, tokenizer = load_causal_lm(options, model_class, model_types=(model_type,), shard=shard_causal_lm)
        random_weights = False
    else:
        config = preset_config(options.preset_in(PRESETS, NAME), arch or DEFAULT_ARCH)
        model_class, _ = ARCHITECTURES[config.model_type].model_and_config_classes()
        hf = random_causal_lm(model_class, config, options, shard=shard_causal_lm)
        tokenizer = code_tokenizer(config.vocab_size)
        random_weights = True
    hf.eval()
    hf.set_attn_implementation("eager")  # the baseline; `sdpa` switches it where the architecture takes it
    return CodeCompletion(hf, tokenizer, options=options, random_weights=random_weights, name=NAME)


__all__ = ["PRESETS", "build", "preset_config"]
