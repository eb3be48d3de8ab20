"""The study's characterization of imagen/t-i: the attention sequence lengths over one inference of
the cascade, per stage."""

from __future__ import annotations

from genaccel.api import PROMPTS, BatchResult

from .presets import STAGE_NAMES


def run_once(instance, options: dict, prompt: str = PROMPTS[0]) -> BatchResult:
    """One guided inference of ``prompt`` outside a run (characterization), with plain ``options``."""
    options = {k: v for k, v in options.items() if v is not None}
    return instance.guided_run([instance.prompt_sample(prompt)], options, False, None)


def sequence_profile(instance, steps: int = 1) -> dict:
    """The attention sequence lengths over one inference of the cascade, per stage: every attention call of the
    stage's first UNet forward (query length: the positions of the feature map it attends from; key length: those
    positions and the text, or the text alone where a block attends only across, as IF-II's), and the max/min of
    the query lengths — a U per stage (down, mid, up), stage after stage at growing resolution."""
    from diffusers.models.attention_processor import Attention

    calls, state, handles = [], {"stage": None, "forward": 0}, []

    def on_unet(name):
        def hook(module, args, kwargs):
            if state["stage"] != name:
                state["stage"], state["forward"] = name, 0
            else:
                state["forward"] += 1
        return hook

    def on_attention(module, args, kwargs):
        if state["forward"]:
            return
        hidden = args[0] if args else kwargs["hidden_states"]
        lq = hidden.shape[2] * hidden.shape[3] if hidden.dim() == 4 else hidden.shape[1]
        context = kwargs.get("encoder_hidden_states")
        added = getattr(module, "added_kv_proj_dim", None) is not None
        cross = context is not None and (not added or getattr(module, "only_cross_attention", False))
        lk = context.shape[1] if cross else lq + (context.shape[1] if context is not None else 0)
        calls.append({"stage": state["stage"], "kind": "cross" if cross else "self", "query_len": lq, "key_len": lk})

    for index, stage in enumerate(instance.stages):
        handles.append(stage.unet.register_forward_pre_hook(on_unet(STAGE_NAMES[index]), with_kwargs=True))
        for module in stage.unet.modules():
            if isinstance(module, Attention):
                handles.append(module.register_forward_pre_hook(on_attention, with_kwargs=True))
    try:
        run_once(instance, {"num_inference_steps": steps, "sr_steps": steps, "upscaler_steps": steps,
                            "stages": len(instance.stages)})
    finally:
        for h in handles:
            h.remove()
    out = {}
    for name in STAGE_NAMES[:len(instance.stages)]:
        own = [c for c in calls if c["stage"] == name]
        lens = [c["query_len"] for c in own]
        out[name] = {"calls": own, "query_lengths": lens, "max": max(lens), "min": min(lens),
                     "ratio": max(lens) / min(lens)}
    return out
