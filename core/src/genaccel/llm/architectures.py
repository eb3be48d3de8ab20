"""What differs between decoder-only architectures, for the step protocol: one record per
``model_type`` (:data:`ARCHITECTURES`), read by :class:`genaccel.llm.causal_lm.HFCausalLM` and by
the builders of :mod:`genaccel.llm.building`, never branched on by name.

- ``windows``: which layers attend within a sliding window of ``config.sliding_window`` cached
  positions (a key at cache index ``k`` is seen from query index ``q`` when ``q - W < k <= q``, as
  transformers' masks): none, every layer (Mistral, Phi-3), or the layers ``config.layer_types``
  names ``sliding_attention`` (Qwen2's ``max_window_layers``, Gemma 2's alternation);
- ``attention``: the attention implementations the architecture takes (Gemma 2 soft-caps its
  attention logits, which SDPA cannot);
- ``final_softcap``: logits pass through ``cap * tanh(logits / cap)``, cap
  ``config.final_logit_softcapping`` (Gemma 2);
- ``embed_scale``: the embedding multiplies by sqrt(hidden size), a non-persistent buffer that a
  model built on the meta device loses (Gemma, Gemma 2);
- ``norm_neutral``: the RMSNorm weight of the identity (Gemma's norms compute ``x * (1 + w)``: 0).

Sharding names and fused projections are :mod:`genaccel.distributed.tp`'s table; GGUF names are
:mod:`genaccel.models.gguf`'s.
"""

from __future__ import annotations

import attrs

from ..errors import GenaccelError

WINDOWS = ("none", "every-layer", "layer-types")


@attrs.frozen(kw_only=True)
class Architecture:
    model_type: str
    label: str
    model_class: str = attrs.field(validator=attrs.validators.matches_re(r"\w+ForCausalLM"))  # in transformers
    config_class: str = attrs.field(validator=attrs.validators.matches_re(r"\w+Config"))
    windows: str = attrs.field(default="none", validator=attrs.validators.in_(WINDOWS))
    attention: tuple[str, ...] = attrs.field(default=("eager", "sdpa"), converter=tuple)
    final_softcap: bool = False
    embed_scale: bool = False
    norm_neutral: float = 1.0

    def layer_windows(self, config, num_layers: int) -> tuple[int | None, ...]:
        """Each layer's sliding window (None: the layer sees every earlier position)."""
        window = getattr(config, "sliding_window", None)
        if self.windows == "none" or window is None:
            return (None,) * num_layers
        if self.windows == "every-layer":
            return (int(window),) * num_layers
        types = list(getattr(config, "layer_types", None) or ())
        return tuple(int(window) if t == "sliding_attention" else None for t in types[:num_layers])

    def logit_softcap(self, config) -> float | None:
        return (getattr(config, "final_logit_softcapping", None) or None) if self.final_softcap else None

    def model_and_config_classes(self):
        import transformers

        return getattr(transformers, self.model_class), getattr(transformers, self.config_class)


def _arch(model_type, label, prefix, **facts) -> Architecture:
    return Architecture(model_type=model_type, label=label, model_class=f"{prefix}ForCausalLM",
                        config_class=f"{prefix}Config", **facts)


#: The supported decoder-only architectures, by ``config.json``'s ``model_type``.
ARCHITECTURES = {a.model_type: a for a in (
    _arch("llama", "Llama", "Llama"),
    _arch("mistral", "Mistral", "Mistral", windows="every-layer"),
    _arch("qwen2", "Qwen2", "Qwen2", windows="layer-types"),
    _arch("qwen3", "Qwen3", "Qwen3", windows="layer-types"),
    _arch("gemma", "Gemma", "Gemma", embed_scale=True, norm_neutral=0.0),
    _arch("gemma2", "Gemma 2", "Gemma2", windows="layer-types", attention=("eager",), final_softcap=True,
          embed_scale=True, norm_neutral=0.0),
    _arch("phi3", "Phi-3", "Phi3", windows="every-layer"),
)}

#: Models outside the table that reuse the step protocol as they are (Chameleon, Seamless's decoder).
PLAIN = Architecture(model_type="", label="", model_class="PlainForCausalLM", config_class="PlainConfig")


def architecture_of(config) -> Architecture:
    """The record of ``config``'s model type; :data:`PLAIN` (no window, no soft-cap) outside the table."""
    return ARCHITECTURES.get(getattr(config, "model_type", ""), PLAIN)


def supported_architecture(model_type, where: str) -> Architecture:
    """The record of ``model_type``, or a one-line error naming it, ``where`` it came from, and the supported ones."""
    if model_type in ARCHITECTURES:
        return ARCHITECTURES[model_type]
    names = ", ".join(f"{a.model_type} ({a.label})" for a in ARCHITECTURES.values())
    raise GenaccelError(f"{where} holds model_type {model_type!r}, which genaccel does not support; supported: {names}")
